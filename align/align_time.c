/* Segments -> sentences with estimated times, then refinement on the decoded audio. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align_internal.h"
#include "flm_alloc.h"
#include "flm_align.h"

/* s: how far beyond the gap between two adjacent input segments refinement may move their
 * boundary (the input's times are trusted to about this much) */
#define EDGE_WINDOW 0.35

/* A group: consecutive segments joined because one ends inside a sentence. */
typedef struct group {
    char *text; /* joined text */
    size_t size;
    size_t *seg_begin; /* [n] byte offset of each segment's text in text */
    int32_t *seg_w0;   /* [n] cumulative weight before each segment */
    size_t *segs;      /* [n] segment indices in the utterance */
    size_t n, cap_text, cap_n_a, cap_n_b, cap_n_c;
} group;

static int ends_sentence(const char *text)
{
    size_t n = strlen(text);
    while (n > 0) {
        size_t p = align_prev_start(text, n), q = p;
        uint32_t c = align_next_cp(text, n, &q);
        if (c == '"' || c == '\'' || c == 0x201d || c == 0x2019 || c == ')' || c == 0x300d ||
            c == 0xff09 || align_is_space(c)) {
            n = p;
            continue;
        }
        return c == '.' || c == '!' || c == '?' || c == ';' || c == 0x2026 || c == 0x3002 ||
               c == 0xff01 || c == 0xff1f || c == 0xff1b;
    }
    return 1;
}

static int group_add(group *g, const flm_utterance *u, size_t j)
{
    const char *t = u->segs[j].text;
    size_t len = strlen(t);
    if (flm_grow((void **)&g->text, &g->cap_text, g->size + len + 2, 1) ||
        flm_grow((void **)&g->seg_begin, &g->cap_n_a, g->n + 1, sizeof *g->seg_begin) ||
        flm_grow((void **)&g->seg_w0, &g->cap_n_b, g->n + 1, sizeof *g->seg_w0) ||
        flm_grow((void **)&g->segs, &g->cap_n_c, g->n + 1, sizeof *g->segs))
        return FLM_ENOMEM;
    if (g->size) {
        size_t i = align_prev_start(g->text, g->size), k = 0;
        uint32_t a = align_next_cp(g->text, g->size, &i), b = align_next_cp(t, len, &k);
        if (!align_no_space_joins(a) && !align_no_space_joins(b))
            g->text[g->size++] = ' ';
    }
    g->seg_w0[g->n] =
        g->n ? g->seg_w0[g->n - 1] + flm_sentence_weight(g->text, g->seg_begin[g->n - 1], g->size)
             : 0;
    g->seg_begin[g->n] = g->size;
    g->segs[g->n++] = j;
    memcpy(g->text + g->size, t, len);
    g->size += len;
    g->text[g->size] = 0;
    return 0;
}

/* Times around the weight position c of the group: *t_end ends what is before, *t_start starts
 * what follows; *edge = 1 when c is a segment boundary (times given by the input). */
static void time_at(const group *g, const flm_utterance *u, int use_words, int32_t c,
                    int32_t total_w, double *t_end, double *t_start, int *edge)
{
    *edge = 0;
    for (size_t k = 0; k < g->n; k++) {
        const flm_align_segment *s = &u->segs[g->segs[k]];
        int32_t w0 = g->seg_w0[k];
        int32_t w1 = k + 1 < g->n ? g->seg_w0[k + 1] : total_w;
        if (c > w1 && k + 1 < g->n)
            continue;
        if (c == w0 && k > 0) {
            *t_end = u->segs[g->segs[k - 1]].end;
            *t_start = s->start;
            *edge = 1;
            return;
        }
        if (c == w1 && k + 1 < g->n) {
            *t_end = s->end;
            *t_start = u->segs[g->segs[k + 1]].start;
            *edge = 1;
            return;
        }
        if (use_words && s->n_words) {
            /* the first word that starts at or after c (word weights scaled to the text's) */
            int32_t ww = 0;
            for (size_t q = 0; q < s->n_words; q++)
                ww += flm_sentence_weight(s->words[q].text, 0, strlen(s->words[q].text));
            double target = (double)(c - w0) * ww / (w1 > w0 ? w1 - w0 : 1);
            double acc = 0;
            for (size_t q = 0; q < s->n_words; q++) {
                if (acc >= target - 0.5 && q > 0) {
                    *t_end = s->words[q - 1].end;
                    *t_start = s->words[q].start;
                    return;
                }
                acc += flm_sentence_weight(s->words[q].text, 0, strlen(s->words[q].text));
            }
        }
        double f = w1 > w0 ? (double)(c - w0) / (w1 - w0) : 0;
        *t_end = *t_start = s->start + f * (s->end - s->start);
        return;
    }
    *t_end = *t_start = g->n ? u->segs[g->segs[g->n - 1]].end : 0;
}

static int add_sentence(flm_utterance *u, const group *g, size_t b, size_t e, double start,
                        double end, double estimate)
{
    if (flm_grow((void **)&u->sents, &u->cap_sents, u->n_sents + 1, sizeof *u->sents))
        return FLM_ENOMEM;
    flm_sentence *s = &u->sents[u->n_sents];
    memset(s, 0, sizeof *s);
    if (!(s->text = flm_malloc(e - b + 1)))
        return FLM_ENOMEM;
    memcpy(s->text, g->text + b, e - b);
    s->text[e - b] = 0;
    s->start = start;
    s->end = end;
    s->split_estimate = estimate;
    /* confidence: the lowest of the segments it overlaps, when all give one */
    s->confidence = -1;
    int all = 1;
    double lo = 1e9;
    for (size_t k = 0; k < g->n; k++) {
        size_t sb = g->seg_begin[k], se = k + 1 < g->n ? g->seg_begin[k + 1] : g->size;
        if (se <= b || sb >= e)
            continue;
        double c = u->segs[g->segs[k]].confidence;
        if (c < 0)
            all = 0;
        else if (c < lo)
            lo = c;
        if (s->seg == 0 || k == 0)
            s->seg = (int32_t)g->segs[k];
    }
    if (all && lo < 1e9)
        s->confidence = lo;
    u->n_sents++;
    return 0;
}

/* Cuts a span longer than the limits at the clause point nearest its weight middle (or, with
 * none, the space or character nearest it), recursively. */
static int split_long(flm_sentence_span **out, size_t *n, size_t *cap, const char *text,
                      flm_sentence_span sp, double sec_per_w, const flm_align_params *p,
                      const flm_tokenizer *tok, int depth)
{
    int32_t w = flm_sentence_weight(text, sp.begin, sp.end);
    int too_long = w * sec_per_w > p->max_duration ||
                   flm_align_count_tokens(tok, text + sp.begin, sp.end - sp.begin) > p->max_tokens;
    if (!too_long || w < 2 || depth > 30) {
        if (flm_grow((void **)out, cap, *n + 1, sizeof **out))
            return FLM_ENOMEM;
        (*out)[(*n)++] = sp;
        return 0;
    }
    size_t pts[256];
    size_t np = flm_sentence_clause_points(text, sp.begin, sp.end, pts, 256);
    size_t best = 0;
    double best_d = 1e18;
    for (size_t k = 0; k < np; k++) {
        double d = fabs(flm_sentence_weight(text, sp.begin, pts[k]) - w / 2.0);
        if (d < best_d)
            best_d = d, best = pts[k];
    }
    if (!best) { /* no clause punctuation: a space, else any character boundary */
        for (size_t i = sp.begin; i < sp.end;) {
            size_t at = i;
            uint32_t c = align_next_cp(text, sp.end, &i);
            int ok = align_is_space(c) || align_is_cjk(c);
            double d = fabs(flm_sentence_weight(text, sp.begin, at) - w / 2.0);
            if (ok && at > sp.begin && d < best_d)
                best_d = d, best = at;
        }
    }
    if (!best || best <= sp.begin || best >= sp.end) {
        if (flm_grow((void **)out, cap, *n + 1, sizeof **out))
            return FLM_ENOMEM;
        (*out)[(*n)++] = sp;
        return 0;
    }
    flm_sentence_span a = {sp.begin, best}, b = {best, sp.end};
    while (a.end > a.begin && text[a.end - 1] == ' ')
        a.end--;
    while (b.begin < b.end && text[b.begin] == ' ')
        b.begin++;
    int rc = split_long(out, n, cap, text, a, sec_per_w, p, tok, depth + 1);
    return rc ? rc : split_long(out, n, cap, text, b, sec_per_w, p, tok, depth + 1);
}

static int split_group(flm_utterance *u, group *g, const flm_align_params *p,
                       const flm_tokenizer *tok, flm_error *err)
{
    int lang = flm_align_language_from_code(u->language);
    flm_sentence_span *spans = NULL, *fin = NULL;
    size_t n = 0, cap = 0, nf = 0, capf = 0;
    int rc = flm_sentence_split(g->text, g->size, lang, &spans, &n, &cap, err);
    if (rc)
        return rc;
    flm_sentence_merge_small(g->text, spans, &n, p->min_chars);
    int32_t total_w = flm_sentence_weight(g->text, 0, g->size);
    double t0 = u->segs[g->segs[0]].start, t1 = u->segs[g->segs[g->n - 1]].end;
    double sec_per_w = total_w > 0 ? (t1 - t0) / total_w : 0;
    for (size_t k = 0; k < n && !rc; k++)
        rc = split_long(&fin, &nf, &capf, g->text, spans[k], sec_per_w, p, tok, 0);
    int use_words = 1;
    for (size_t k = 0; k < g->n; k++)
        use_words &= u->segs[g->segs[k]].n_words > 0;
    double prev_end = t0, est = -1;
    for (size_t k = 0; k < nf && !rc; k++) {
        double start = prev_end, end = t1, next_start = t1;
        if (k + 1 < nf) {
            int edge;
            int32_t c = flm_sentence_weight(g->text, 0, fin[k + 1].begin);
            time_at(g, u, use_words, c, total_w, &end, &next_start, &edge);
            if (end < start)
                end = start;
            if (next_start < end)
                next_start = end;
            rc = add_sentence(u, g, fin[k].begin, fin[k].end, start, end, est);
            est = edge ? -1 : (end + next_start) / 2;
        } else {
            rc = add_sentence(u, g, fin[k].begin, fin[k].end, start, end, est);
        }
        prev_end = next_start;
    }
    flm_free(spans);
    flm_free(fin);
    return rc ? flm_error_set(err, rc, "%s: out of memory", u->id) : 0;
}

int flm_utterance_split(flm_utterance *u, const flm_align_params *p, const flm_tokenizer *tok,
                        flm_error *err)
{
    for (size_t j = 0; j < u->n_sents; j++)
        flm_free(u->sents[j].text);
    u->n_sents = 0;
    if (u->rejected)
        return 0;
    if (!u->language[0]) { /* detect from the script of all its text */
        int32_t zh = 0, all = 0;
        for (size_t j = 0; j < u->n_segs; j++) {
            if (u->segs[j].rejected)
                continue;
            size_t len = strlen(u->segs[j].text);
            int32_t w = flm_sentence_weight(u->segs[j].text, 0, len);
            all += w;
            zh += flm_align_detect_language(u->segs[j].text, len) == FLM_LANG_ZH ? w : 0;
        }
        char *l = flm_strdup(zh * 2 > all ? "zh" : "en");
        if (!l)
            return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", u->id);
        flm_free(u->language);
        u->language = l;
    }
    group g = {0};
    int rc = 0;
    for (size_t j = 0; j < u->n_segs && !rc; j++) {
        const flm_align_segment *s = &u->segs[j];
        if (s->rejected)
            continue;
        if (g.n) {
            const flm_align_segment *last = &u->segs[g.segs[g.n - 1]];
            /* a segment that ends inside a sentence continues into the next one */
            if (ends_sentence(last->text) || s->start - last->end > 1.0) {
                rc = split_group(u, &g, p, tok, err);
                g.n = g.size = 0;
            }
        }
        if (!rc && group_add(&g, u, j))
            rc = flm_error_set(err, FLM_ENOMEM, "%s: out of memory", u->id);
    }
    if (!rc && g.n)
        rc = split_group(u, &g, p, tok, err);
    /* boundaries between adjacent segments (less than 1 s apart) are estimates too: ASR segment
     * times drift, so refinement may move them into the pause between the two */
    for (size_t j = 1; !rc && j < u->n_sents; j++)
        if (u->sents[j].split_estimate < 0 && u->sents[j].start - u->sents[j - 1].end < 1.0) {
            u->sents[j].split_estimate = (u->sents[j].start + u->sents[j - 1].end) / 2;
            /* the input's times are near: within half the gap plus edge_window */
            u->sents[j].split_window = (u->sents[j].start - u->sents[j - 1].end) / 2 + EDGE_WINDOW;
        }
    flm_free(g.text);
    flm_free(g.seg_begin);
    flm_free(g.seg_w0);
    flm_free(g.segs);
    return rc;
}

/* ---- Refinement ----------------------------------------------------------------------------- */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Greedy placement of split j (between sents[j-1] and sents[j]): the best silent run near its
 * estimate, else the quietest hop. */
static void place_greedy(flm_utterance *u, size_t j, const float *db, int64_t nh, float thr,
                         double dh, const flm_align_params *p)
{
#define SILENT(h) ((h) < 0 || (h) >= nh || db[(h)] < thr)
    flm_sentence *s = &u->sents[j], *prev = &u->sents[j - 1];
    double lo = prev->start + 0.1, hi = s->end - 0.1;
    double win = s->split_window > 0 ? s->split_window : p->search_window;
    double a = fmax(lo, s->split_estimate - win);
    double b = fmin(hi, s->split_estimate + win);
    if (b <= a)
        return;
    int64_t ha = (int64_t)(a / dh), hb = (int64_t)(b / dh);
    double best = -1e18, best_t = -1;
    for (int64_t h = ha; h <= hb && h < nh;) {
        if (!SILENT(h)) {
            h++;
            continue;
        }
        int64_t r = h;
        while (r + 1 <= hb && SILENT(r + 1))
            r++;
        double rs = h * dh, re = (r + 1) * dh, len = re - rs;
        double dist = s->split_estimate < rs   ? rs - s->split_estimate
                      : s->split_estimate > re ? s->split_estimate - re
                                               : 0;
        double score = len - 0.15 * dist;
        if (score > best)
            best = score, best_t = (rs + re) / 2;
        h = r + 1;
    }
    if (best_t < 0) { /* no silence: the quietest hop near the estimate */
        float lv = 1e30f;
        for (int64_t h = ha; h <= hb && h < nh; h++) {
            double t = (h + 0.5) * dh;
            float v = db[h] + (float)(20.0 * fabs(t - s->split_estimate));
            if (v < lv)
                lv = v, best_t = t;
        }
    }
    if (best_t >= 0)
        prev->end = s->start = best_t;
#undef SILENT
}

/* The splits of sentences a..b (a chain: each boundary inside it was estimated) take distinct
 * interior silent runs in order, maximizing the sum of (run length - 0.15 x distance to the
 * estimate), runs beyond the search window penalized by 100 per second: dynamic programming over
 * (split, run). Returns 1 if placed, 0 if there are fewer runs than splits (caller: greedy). */
static int place_chain(flm_utterance *u, size_t a, size_t b, const float *db, int64_t nh, float thr,
                       double dh, const flm_align_params *p, int *nomem)
{
#define SILENT(h) ((h) < 0 || (h) >= nh || db[(h)] < thr)
    size_t nj = b - a;
    int64_t h0 = (int64_t)(u->sents[a].start / dh), h1 = (int64_t)ceil(u->sents[b].end / dh) - 1;
    if (h1 >= nh)
        h1 = nh - 1;
    while (h0 <= h1 && SILENT(h0))
        h0++;
    while (h1 >= h0 && SILENT(h1))
        h1--;
    size_t nr = 0;
    for (int64_t h = h0; h <= h1; h++)
        nr += SILENT(h) && !SILENT(h - 1);
    if (nr < nj || (double)nr * (double)nj > 4e6)
        return 0;
    int64_t *runs = flm_malloc(nr * 2 * sizeof *runs);  /* [nr][2] first hop, one past last */
    double *dp = flm_malloc(nj * nr * sizeof *dp);      /* [nj][nr] best total ending here */
    int32_t *back = flm_malloc(nj * nr * sizeof *back); /* [nj][nr] run of the previous split */
    if (!runs || !dp || !back) {
        flm_free(runs);
        flm_free(dp);
        flm_free(back);
        *nomem = 1;
        return 0;
    }
    size_t k = 0;
    for (int64_t h = h0; h <= h1; h++) {
        if (SILENT(h) && !SILENT(h - 1))
            runs[2 * k] = h;
        if (SILENT(h) && !SILENT(h + 1))
            runs[2 * k++ + 1] = h + 1;
    }
    for (size_t j = 0; j < nj; j++) {
        double est = u->sents[a + j + 1].split_estimate, best_prev = -1e300;
        int32_t arg_prev = -1;
        for (size_t r = 0; r < nr; r++) {
            if (j > 0 && r > 0 && dp[(j - 1) * nr + r - 1] > best_prev)
                best_prev = dp[(j - 1) * nr + r - 1], arg_prev = (int32_t)(r - 1);
            double rs = runs[2 * r] * dh, re = runs[2 * r + 1] * dh;
            double dist = est < rs ? rs - est : est > re ? est - re : 0;
            double win = u->sents[a + j + 1].split_window > 0 ? u->sents[a + j + 1].split_window
                                                              : p->search_window;
            double sc = (re - rs) - 0.15 * dist;
            if (dist > win)
                sc -= 100 * (dist - win);
            if (r < j || (j > 0 && arg_prev < 0)) {
                dp[j * nr + r] = -1e300;
                back[j * nr + r] = -1;
            } else {
                dp[j * nr + r] = sc + (j > 0 ? best_prev : 0);
                back[j * nr + r] = arg_prev;
            }
        }
    }
    size_t r = 0;
    for (size_t q = 1; q < nr; q++)
        if (dp[(nj - 1) * nr + q] > dp[(nj - 1) * nr + r])
            r = q;
    int ok = dp[(nj - 1) * nr + r] > -1e299;
    for (size_t j = nj; ok && j-- > 0;) {
        double t = (runs[2 * r] + runs[2 * r + 1]) * dh / 2;
        u->sents[a + j].end = u->sents[a + j + 1].start = t;
        if (j > 0)
            r = (size_t)back[j * nr + r];
    }
    flm_free(runs);
    flm_free(dp);
    flm_free(back);
    return ok;
#undef SILENT
}

int flm_utterance_refine(flm_utterance *u, const float *x, int64_t n, int32_t rate,
                         const flm_align_params *p, flm_error *err)
{
    if (u->rejected || u->n_sents == 0 || n <= 0)
        return 0;
    double dur = (double)n / rate;
    for (size_t j = 0; j < u->n_sents; j++) { /* times outside the audio (duration unchecked) */
        flm_sentence *s = &u->sents[j];
        s->start = fmin(fmax(s->start, 0), dur);
        s->end = fmin(fmax(s->end, s->start), dur);
        if (s->split_estimate >= 0)
            s->split_estimate = fmin(s->split_estimate, dur);
    }
    int64_t hop = (int64_t)llround(p->hop * rate);
    if (hop < 1)
        hop = 1;
    int64_t nh = (n + hop - 1) / hop;
    float *db = flm_malloc((size_t)nh * 2 * sizeof *db); /* [nh] levels, [nh] scratch */
    if (!db)
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", u->id);
    for (int64_t h = 0; h < nh; h++) {
        int64_t a = h * hop, b = a + hop < n ? a + hop : n;
        /* 8 independent float lanes: vectorizes without -ffast-math; a hop is short enough
         * (240 samples) for float accumulation */
        float lane[8] = {0};
        int64_t i = a;
        for (; i + 8 <= b; i += 8)
            for (int k = 0; k < 8; k++)
                lane[k] += x[i + k] * x[i + k];
        double e = 0;
        for (; i < b; i++)
            e += (double)x[i] * x[i];
        for (int k = 0; k < 8; k++)
            e += lane[k];
        db[h] = (float)(10.0 * log10(e / (double)(b - a) + 1e-12));
    }
    /* silence: below the loud level (95th percentile) minus silence_db, and at least 6 dB above
     * the floor (10th percentile) when the audio is noisy */
    float *tmp = db + nh;
    memcpy(tmp, db, (size_t)nh * sizeof *tmp);
    qsort(tmp, (size_t)nh, sizeof *tmp, cmp_float);
    float loud = tmp[(size_t)((nh - 1) * 0.95)], floor10 = tmp[(size_t)((nh - 1) * 0.10)];
    float thr = loud - (float)p->silence_db;
    if (floor10 + 6 > thr && floor10 + 6 < loud - 6)
        thr = floor10 + 6;
    double dh = (double)hop / rate;
#define SILENT(h) ((h) < 0 || (h) >= nh || db[(h)] < thr)
    /* 1. splits inside segments: per chain of estimated splits, distinct silent runs in order
     * (place_chain); greedy per split when there are too few runs */
    for (size_t a = 0; a < u->n_sents;) {
        size_t b = a;
        while (b + 1 < u->n_sents && u->sents[b + 1].split_estimate >= 0)
            b++;
        int nomem = 0;
        if (b > a && !place_chain(u, a, b, db, nh, thr, dh, p, &nomem)) {
            if (nomem) {
                flm_free(db);
                return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", u->id);
            }
            for (size_t j = a + 1; j <= b; j++)
                place_greedy(u, j, db, nh, thr, dh, p);
        }
        a = b + 1;
    }
    /* 2. trim each sentence to its speech plus margin; at segment edges (times from the input)
     * also grow a span whose edge is inside speech, up to a third of the search window */
    double grow = p->search_window / 3;
    for (size_t j = 0; j < u->n_sents; j++) {
        flm_sentence *s = &u->sents[j];
        double lim_lo = j ? u->sents[j - 1].end : 0;
        double lim_hi = j + 1 < u->n_sents ? u->sents[j + 1].start : (double)n / rate;
        int64_t h0 = (int64_t)(s->start / dh), h1 = (int64_t)ceil(s->end / dh) - 1;
        if (h1 >= nh)
            h1 = nh - 1;
        int edge_start = j == 0 || s->split_estimate < 0;
        int edge_end = j + 1 == u->n_sents || u->sents[j + 1].split_estimate < 0;
        if (edge_start && !SILENT(h0))
            while (h0 > 0 && !SILENT(h0 - 1) && (h0 - 1) * dh >= fmax(lim_lo, s->start - grow))
                h0--;
        if (edge_end && !SILENT(h1))
            while (h1 + 1 < nh && !SILENT(h1 + 1) && (h1 + 2) * dh <= fmin(lim_hi, s->end + grow))
                h1++;
        int64_t a = h0, b = h1;
        while (a <= b && SILENT(a))
            a++;
        while (b >= a && SILENT(b))
            b--;
        if (a > b)
            continue; /* no speech found: keep the estimate */
        s->start = fmax(fmax(a * dh - p->margin, lim_lo), 0);
        s->end = fmin(fmin((b + 1) * dh + p->margin, lim_hi), (double)n / rate);
    }
#undef SILENT
    flm_free(db);
    return 0;
}
