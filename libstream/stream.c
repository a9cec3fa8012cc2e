#include "flm_stream.h"

#include <string.h>

#include "flm_alloc.h"

const char *flm_loss_class_name(int cls)
{
    static const char *names[FLM_N_LOSS_CLASSES] = {"none", "semantic", "acoustic", "monologue",
                                                    "wait"};
    return cls >= 0 && cls < FLM_N_LOSS_CLASSES ? names[cls] : "?";
}

int flm_sample_create(flm_sample **out, int32_t n_frames, flm_error *err)
{
    *out = NULL;
    if (n_frames < 0 || n_frames > FLM_MAX_FRAMES)
        return flm_error_set(err, FLM_ERANGE, "sample length %d frames outside [0, %d]", n_frames,
                             FLM_MAX_FRAMES);
    flm_sample *s = flm_calloc(1, sizeof *s);
    if (!s)
        goto fail;
    s->n_frames = n_frames;
    s->tokens = flm_calloc((size_t)FLM_N_CHANNELS * (size_t)n_frames, sizeof *s->tokens);
    s->loss_class = flm_calloc((size_t)FLM_N_CHANNELS * (size_t)n_frames, 1);
    if (!s->tokens || !s->loss_class)
        goto fail;
    *out = s;
    return 0;
fail:
    flm_sample_destroy(&s);
    return flm_error_set(err, FLM_ENOMEM, "out of memory creating a sample of %d frames", n_frames);
}

static void meta_clear(flm_meta *m)
{
    flm_free(m->key);
    flm_free(m->s);
}

void flm_sample_destroy(flm_sample **sp)
{
    flm_sample *s = *sp;
    if (!s)
        return;
    flm_free(s->tokens);
    flm_free(s->loss_class);
    flm_free(s->id);
    flm_free(s->style);
    flm_free(s->stage);
    flm_free(s->language);
    flm_free(s->corpus);
    flm_free(s->speakers);
    for (int32_t i = 0; i < s->n_meta; i++)
        meta_clear(&s->meta[i]);
    flm_free(s->meta);
    for (int32_t i = 0; i < s->n_events; i++)
        flm_free(s->events[i].kind);
    flm_free(s->events);
    flm_free(s);
    *sp = NULL;
}

int flm_sample_resize(flm_sample *s, int32_t n_frames, flm_error *err)
{
    if (n_frames < 0 || n_frames > FLM_MAX_FRAMES)
        return flm_error_set(err, FLM_ERANGE, "sample length %d frames outside [0, %d]", n_frames,
                             FLM_MAX_FRAMES);
    size_t n = (size_t)FLM_N_CHANNELS * (size_t)n_frames;
    int32_t *tok = flm_calloc(n, sizeof *tok);
    uint8_t *cls = flm_calloc(n, 1);
    if (!tok || !cls) {
        flm_free(tok);
        flm_free(cls);
        return flm_error_set(err, FLM_ENOMEM, "out of memory resizing a sample to %d frames",
                             n_frames);
    }
    int32_t keep = s->n_frames < n_frames ? s->n_frames : n_frames;
    for (int ch = 0; ch < FLM_N_CHANNELS; ch++) {
        memcpy(tok + (size_t)ch * n_frames, s->tokens + (size_t)ch * s->n_frames,
               (size_t)keep * sizeof *tok);
        memcpy(cls + (size_t)ch * n_frames, s->loss_class + (size_t)ch * s->n_frames, (size_t)keep);
    }
    flm_free(s->tokens);
    flm_free(s->loss_class);
    s->tokens = tok;
    s->loss_class = cls;
    s->n_frames = n_frames;
    return 0;
}

static int set_str(char **dst, const char *v)
{
    char *d = NULL;
    if (v && !(d = flm_strdup(v)))
        return FLM_ENOMEM;
    flm_free(*dst);
    *dst = d;
    return 0;
}

int flm_sample_set_id(flm_sample *s, const char *v)
{
    return set_str(&s->id, v);
}
int flm_sample_set_style(flm_sample *s, const char *v)
{
    return set_str(&s->style, v);
}
int flm_sample_set_stage(flm_sample *s, const char *v)
{
    return set_str(&s->stage, v);
}
int flm_sample_set_language(flm_sample *s, const char *v)
{
    return set_str(&s->language, v);
}
int flm_sample_set_corpus(flm_sample *s, const char *v)
{
    return set_str(&s->corpus, v);
}
int flm_sample_set_speakers(flm_sample *s, const char *v)
{
    return set_str(&s->speakers, v);
}

const flm_meta *flm_sample_meta_get(const flm_sample *s, const char *key)
{
    for (int32_t i = 0; i < s->n_meta; i++)
        if (strcmp(s->meta[i].key, key) == 0)
            return &s->meta[i];
    return NULL;
}

/* Returns the slot for key (existing, with its old string value freed, or new). */
static flm_meta *meta_slot(flm_sample *s, const char *key)
{
    for (int32_t i = 0; i < s->n_meta; i++) {
        if (strcmp(s->meta[i].key, key) == 0) {
            flm_free(s->meta[i].s);
            s->meta[i].s = NULL;
            return &s->meta[i];
        }
    }
    if (flm_grow((void **)&s->meta, &s->meta_cap, (size_t)s->n_meta + 1, sizeof *s->meta) < 0)
        return NULL;
    flm_meta *m = &s->meta[s->n_meta];
    memset(m, 0, sizeof *m);
    if (!(m->key = flm_strdup(key)))
        return NULL;
    s->n_meta++;
    return m;
}

int flm_sample_meta_set_int(flm_sample *s, const char *key, int64_t v)
{
    flm_meta *m = meta_slot(s, key);
    if (!m)
        return FLM_ENOMEM;
    m->type = FLM_META_INT;
    m->i = v;
    m->r = 0;
    return 0;
}

int flm_sample_meta_set_real(flm_sample *s, const char *key, double v)
{
    flm_meta *m = meta_slot(s, key);
    if (!m)
        return FLM_ENOMEM;
    m->type = FLM_META_REAL;
    m->r = v;
    m->i = 0;
    return 0;
}

int flm_sample_meta_set_text(flm_sample *s, const char *key, const char *v)
{
    char *d = flm_strdup(v);
    if (!d)
        return FLM_ENOMEM;
    flm_meta *m = meta_slot(s, key);
    if (!m) {
        flm_free(d);
        return FLM_ENOMEM;
    }
    m->type = FLM_META_TEXT;
    m->s = d;
    m->i = 0;
    m->r = 0;
    return 0;
}

int flm_sample_add_event(flm_sample *s, const char *kind, int32_t frame, int32_t n_frames,
                         double value)
{
    char *k = flm_strdup(kind);
    if (!k)
        return FLM_ENOMEM;
    if (flm_grow((void **)&s->events, &s->events_cap, (size_t)s->n_events + 1, sizeof *s->events) <
        0) {
        flm_free(k);
        return FLM_ENOMEM;
    }
    s->events[s->n_events++] = (flm_event){k, frame, n_frames, value};
    return 0;
}

int flm_sample_clone(flm_sample **out, const flm_sample *s, flm_error *err)
{
    flm_sample *c = NULL;
    int rc = flm_sample_create(&c, s->n_frames, err);
    if (rc < 0)
        return rc;
    size_t n = (size_t)FLM_N_CHANNELS * (size_t)s->n_frames;
    memcpy(c->tokens, s->tokens, n * sizeof *s->tokens);
    memcpy(c->loss_class, s->loss_class, n);
    c->duration_s = s->duration_s;
    if (set_str(&c->id, s->id) || set_str(&c->style, s->style) || set_str(&c->stage, s->stage) ||
        set_str(&c->language, s->language) || set_str(&c->corpus, s->corpus) ||
        set_str(&c->speakers, s->speakers))
        goto fail;
    for (int32_t i = 0; i < s->n_meta; i++) {
        const flm_meta *m = &s->meta[i];
        rc = m->type == FLM_META_INT    ? flm_sample_meta_set_int(c, m->key, m->i)
             : m->type == FLM_META_REAL ? flm_sample_meta_set_real(c, m->key, m->r)
                                        : flm_sample_meta_set_text(c, m->key, m->s);
        if (rc < 0)
            goto fail;
    }
    for (int32_t i = 0; i < s->n_events; i++) {
        const flm_event *e = &s->events[i];
        if (flm_sample_add_event(c, e->kind, e->frame, e->n_frames, e->value) < 0)
            goto fail;
    }
    *out = c;
    return 0;
fail:
    flm_sample_destroy(&c);
    return flm_error_set(err, FLM_ENOMEM, "out of memory copying a sample");
}

static int str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int flm_sample_equal(const flm_sample *a, const flm_sample *b)
{
    if (a->n_frames != b->n_frames || a->n_meta != b->n_meta || a->n_events != b->n_events ||
        memcmp(&a->duration_s, &b->duration_s, sizeof a->duration_s) != 0)
        return 0;
    size_t n = (size_t)FLM_N_CHANNELS * (size_t)a->n_frames;
    if (memcmp(a->tokens, b->tokens, n * sizeof *a->tokens) ||
        memcmp(a->loss_class, b->loss_class, n))
        return 0;
    if (!str_eq(a->id, b->id) || !str_eq(a->style, b->style) || !str_eq(a->stage, b->stage) ||
        !str_eq(a->language, b->language) || !str_eq(a->corpus, b->corpus) ||
        !str_eq(a->speakers, b->speakers))
        return 0;
    for (int32_t i = 0; i < a->n_meta; i++) {
        const flm_meta *x = &a->meta[i], *y = &b->meta[i];
        if (strcmp(x->key, y->key) || x->type != y->type || x->i != y->i ||
            memcmp(&x->r, &y->r, sizeof x->r) || !str_eq(x->s, y->s))
            return 0;
    }
    for (int32_t i = 0; i < a->n_events; i++) {
        const flm_event *x = &a->events[i], *y = &b->events[i];
        if (strcmp(x->kind, y->kind) || x->frame != y->frame || x->n_frames != y->n_frames ||
            memcmp(&x->value, &y->value, sizeof x->value))
            return 0;
    }
    return 1;
}

void flm_sample_default_classes(flm_sample *s, int32_t text_wait, int32_t aud_empty,
                                int32_t aud_pad)
{
    for (int ch = 0; ch < FLM_N_CHANNELS; ch++) {
        for (int32_t t = 0; t < s->n_frames; t++) {
            int32_t v = FLM_TOK(s, ch, t);
            uint8_t c = FLM_LOSS_NONE;
            if (ch == FLM_CH_TEXT)
                c = v == text_wait ? FLM_LOSS_WAIT : FLM_LOSS_MONOLOGUE;
            else if (ch < FLM_CH_LISTEN && v != aud_empty && v != aud_pad)
                c = ch == FLM_CH_SPEAK ? FLM_LOSS_SEMANTIC : FLM_LOSS_ACOUSTIC;
            FLM_CLS(s, ch, t) = c;
        }
    }
}

int flm_delay_max(const int32_t delays[FLM_N_CHANNELS])
{
    int m = 0;
    for (int k = 0; k < FLM_N_CHANNELS; k++)
        if (delays[k] > m)
            m = delays[k];
    return m;
}

static int check_delays(const int32_t delays[FLM_N_CHANNELS], flm_error *err)
{
    for (int k = 0; k < FLM_N_CHANNELS; k++)
        if (delays[k] < 0 || delays[k] > FLM_MAX_DELAY)
            return flm_error_set(err, FLM_ERANGE, "delay of channel %d is %d, expected 0..%d", k,
                                 delays[k], FLM_MAX_DELAY);
    return 0;
}

int flm_delay_apply(const int32_t *in, int32_t n_frames, const int32_t delays[FLM_N_CHANNELS],
                    const int32_t fill[FLM_N_CHANNELS], int32_t *out, flm_error *err)
{
    int rc = check_delays(delays, err);
    if (rc < 0)
        return rc;
    size_t n_out = (size_t)n_frames + (size_t)flm_delay_max(delays);
    for (int k = 0; k < FLM_N_CHANNELS; k++) {
        const int32_t *src = in + (size_t)k * n_frames;
        int32_t *dst = out + (size_t)k * n_out;
        size_t d = (size_t)delays[k];
        for (size_t t = 0; t < d; t++)
            dst[t] = fill[k];
        memcpy(dst + d, src, (size_t)n_frames * sizeof *src);
        for (size_t t = d + (size_t)n_frames; t < n_out; t++)
            dst[t] = fill[k];
    }
    return 0;
}

int flm_delay_undo(const int32_t *in, int32_t n_frames_in, const int32_t delays[FLM_N_CHANNELS],
                   int32_t *out, flm_error *err)
{
    int rc = check_delays(delays, err);
    if (rc < 0)
        return rc;
    int32_t n_out = n_frames_in - flm_delay_max(delays);
    if (n_out < 0)
        return flm_error_set(err, FLM_ERANGE, "%d frames are fewer than the largest delay %d",
                             n_frames_in, flm_delay_max(delays));
    for (int k = 0; k < FLM_N_CHANNELS; k++)
        memcpy(out + (size_t)k * n_out, in + (size_t)k * n_frames_in + delays[k],
               (size_t)n_out * sizeof *out);
    return 0;
}

int flm_delay_apply_u8(const uint8_t *in, int32_t n_frames, const int32_t delays[FLM_N_CHANNELS],
                       uint8_t *out, flm_error *err)
{
    int rc = check_delays(delays, err);
    if (rc < 0)
        return rc;
    size_t n_out = (size_t)n_frames + (size_t)flm_delay_max(delays);
    for (int k = 0; k < FLM_N_CHANNELS; k++) {
        uint8_t *dst = out + (size_t)k * n_out;
        memset(dst, FLM_LOSS_NONE, n_out);
        memcpy(dst + delays[k], in + (size_t)k * n_frames, (size_t)n_frames);
    }
    return 0;
}
