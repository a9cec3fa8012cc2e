/* Record codec: one sample <-> the bytes of one (uncompressed) shard record.
 * Layout in docs/shard-format.md ("Record"). Decoding validates every length and value so that
 * arbitrary bytes give an error, never a crash. */
#include <string.h>

#include "flm_alloc.h"
#include "flm_shard.h"
#include "flm_util.h"

#define REC_FIXED 32

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "records store int32 tokens little-endian and the reader views them in place");

typedef struct wbuf {
    uint8_t **buf;
    size_t *size, *cap;
    int failed;
} wbuf;

static uint8_t *wb_reserve(wbuf *b, size_t n)
{
    if (b->failed)
        return NULL;
    if (flm_grow((void **)b->buf, b->cap, *b->size + n, 1) < 0) {
        b->failed = 1;
        return NULL;
    }
    uint8_t *p = *b->buf + *b->size;
    *b->size += n;
    return p;
}

static void wb_u8(wbuf *b, uint8_t v)
{
    uint8_t *p = wb_reserve(b, 1);
    if (p)
        *p = v;
}

static void wb_u32(wbuf *b, uint32_t v)
{
    uint8_t *p = wb_reserve(b, 4);
    if (p)
        flm_put_u32(p, v);
}

static void wb_u64(wbuf *b, uint64_t v)
{
    uint8_t *p = wb_reserve(b, 8);
    if (p)
        flm_put_u64(p, v);
}

static void wb_f64(wbuf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    wb_u64(b, u);
}

/* u32 length including the terminating NUL (0 = absent), then the bytes and the NUL. */
static void wb_str(wbuf *b, const char *s)
{
    if (!s) {
        wb_u32(b, 0);
        return;
    }
    size_t n = strlen(s) + 1;
    wb_u32(b, (uint32_t)n);
    uint8_t *p = wb_reserve(b, n);
    if (p)
        memcpy(p, s, n);
}

int flm_record_encode(const flm_sample *s, uint8_t **buf, size_t *size, size_t *cap, flm_error *err)
{
    wbuf b = {buf, size, cap, 0};
    size_t start = *size;
    size_t n = (size_t)FLM_N_CHANNELS * (size_t)s->n_frames;
    uint8_t *p = wb_reserve(&b, REC_FIXED + n * 4 + n);
    if (p) {
        memcpy(p, "FLMR", 4);
        flm_put_u16(p + 4, FLM_RECORD_VERSION);
        flm_put_u16(p + 6, FLM_N_CHANNELS);
        flm_put_u32(p + 8, (uint32_t)s->n_frames);
        flm_put_u32(p + 12, (uint32_t)s->n_meta);
        flm_put_u32(p + 16, (uint32_t)s->n_events);
        flm_put_u32(p + 20, 0);
        uint64_t d;
        memcpy(&d, &s->duration_s, 8);
        flm_put_u64(p + 24, d);
        memcpy(p + REC_FIXED, s->tokens, n * 4); /* little-endian host (asserted above) */
        memcpy(p + REC_FIXED + 4 * n, s->loss_class, n);
    }
    const char *strs[6] = {s->id, s->style, s->stage, s->language, s->corpus, s->speakers};
    for (int i = 0; i < 6; i++)
        wb_str(&b, strs[i]);
    size_t meta_at = *size;
    wb_u32(&b, 0); /* meta section size, patched below */
    for (int32_t i = 0; i < s->n_meta; i++) {
        const flm_meta *m = &s->meta[i];
        wb_str(&b, m->key);
        wb_u8(&b, (uint8_t)m->type);
        if (m->type == FLM_META_INT)
            wb_u64(&b, (uint64_t)m->i);
        else if (m->type == FLM_META_REAL)
            wb_f64(&b, m->r);
        else
            wb_str(&b, m->s);
    }
    if (!b.failed)
        flm_put_u32(*buf + meta_at, (uint32_t)(*size - meta_at - 4));
    size_t ev_at = *size;
    wb_u32(&b, 0);
    for (int32_t i = 0; i < s->n_events; i++) {
        const flm_event *e = &s->events[i];
        wb_str(&b, e->kind);
        wb_u32(&b, (uint32_t)e->frame);
        wb_u32(&b, (uint32_t)e->n_frames);
        wb_f64(&b, e->value);
    }
    if (b.failed) {
        *size = start;
        return flm_error_set(err, FLM_ENOMEM, "out of memory encoding sample %s",
                             s->id ? s->id : "(no id)");
    }
    flm_put_u32(*buf + ev_at, (uint32_t)(*size - ev_at - 4));
    return 0;
}

typedef struct rbuf {
    const uint8_t *p;
    size_t size, pos;
} rbuf;

static int rb_take(rbuf *r, size_t n, const uint8_t **out)
{
    if (n > r->size - r->pos)
        return -1;
    *out = r->p + r->pos;
    r->pos += n;
    return 0;
}

static int rb_str(rbuf *r, const char **out)
{
    const uint8_t *p;
    if (rb_take(r, 4, &p) < 0)
        return -1;
    uint32_t n = flm_get_u32(p);
    if (n == 0) {
        *out = NULL;
        return 0;
    }
    if (rb_take(r, n, &p) < 0 || p[n - 1] != 0 || memchr(p, 0, n - 1))
        return -1;
    *out = (const char *)p;
    return 0;
}

static int parse_meta(rbuf *r, uint32_t n, flm_sample *s)
{
    for (uint32_t i = 0; i < n; i++) {
        const char *key, *str;
        const uint8_t *p;
        if (rb_str(r, &key) < 0 || !key || rb_take(r, 1, &p) < 0)
            return -1;
        int type = p[0];
        if (type == FLM_META_INT || type == FLM_META_REAL) {
            if (rb_take(r, 8, &p) < 0)
                return -1;
            uint64_t u = flm_get_u64(p);
            if (s) {
                double d;
                memcpy(&d, &u, 8);
                if ((type == FLM_META_INT ? flm_sample_meta_set_int(s, key, (int64_t)u)
                                          : flm_sample_meta_set_real(s, key, d)) < 0)
                    return FLM_ENOMEM;
            }
        } else if (type == FLM_META_TEXT) {
            if (rb_str(r, &str) < 0 || !str)
                return -1;
            if (s && flm_sample_meta_set_text(s, key, str) < 0)
                return FLM_ENOMEM;
        } else {
            return -1;
        }
    }
    return r->pos == r->size ? 0 : -1;
}

static int parse_events(rbuf *r, uint32_t n, flm_sample *s)
{
    for (uint32_t i = 0; i < n; i++) {
        const char *kind;
        const uint8_t *p;
        if (rb_str(r, &kind) < 0 || !kind || rb_take(r, 16, &p) < 0)
            return -1;
        if (s) {
            uint64_t u = flm_get_u64(p + 8);
            double d;
            memcpy(&d, &u, 8);
            if (flm_sample_add_event(s, kind, (int32_t)flm_get_u32(p), (int32_t)flm_get_u32(p + 4),
                                     d) < 0)
                return FLM_ENOMEM;
        }
    }
    return r->pos == r->size ? 0 : -1;
}

int flm_record_decode(const uint8_t *buf, size_t size, flm_record_view *v, flm_error *err)
{
    memset(v, 0, sizeof *v);
    if (size < REC_FIXED || memcmp(buf, "FLMR", 4) != 0)
        return flm_error_set(err, FLM_EFORMAT, "not a sample record (bad magic or %zu bytes)",
                             size);
    if (flm_get_u16(buf + 4) != FLM_RECORD_VERSION || flm_get_u16(buf + 6) != FLM_N_CHANNELS)
        return flm_error_set(err, FLM_EFORMAT,
                             "record version %u with %u channels; this build reads version %d "
                             "with %d channels",
                             flm_get_u16(buf + 4), flm_get_u16(buf + 6), FLM_RECORD_VERSION,
                             FLM_N_CHANNELS);
    uint32_t n_frames = flm_get_u32(buf + 8);
    if (n_frames > FLM_MAX_FRAMES)
        return flm_error_set(err, FLM_EFORMAT, "record claims %u frames (max %d)", n_frames,
                             FLM_MAX_FRAMES);
    size_t n = (size_t)FLM_N_CHANNELS * n_frames;
    if (REC_FIXED + 5 * n > size)
        return flm_error_set(err, FLM_EFORMAT, "record of %u frames needs %zu bytes, has %zu",
                             n_frames, REC_FIXED + 5 * n, size);
    v->n_frames = n_frames;
    v->n_meta = flm_get_u32(buf + 12);
    v->n_events = flm_get_u32(buf + 16);
    uint64_t d = flm_get_u64(buf + 24);
    memcpy(&v->duration_s, &d, 8);
    v->tokens = (const int32_t *)(const void *)(buf + REC_FIXED);
    v->loss_class = buf + REC_FIXED + 4 * n;
    for (size_t i = 0; i < n; i++)
        if (v->loss_class[i] >= FLM_N_LOSS_CLASSES)
            return flm_error_set(err, FLM_EFORMAT, "loss class %u at channel %zu frame %zu",
                                 v->loss_class[i], i / (n_frames ? n_frames : 1),
                                 i % (n_frames ? n_frames : 1));
    rbuf r = {buf, size, REC_FIXED + 5 * n};
    const char **strs[6] = {&v->id, &v->style, &v->stage, &v->language, &v->corpus, &v->speakers};
    for (int i = 0; i < 6; i++)
        if (rb_str(&r, strs[i]) < 0)
            return flm_error_set(err, FLM_EFORMAT, "bad string field %d at byte %zu", i, r.pos);
    const uint8_t *p;
    for (int sec = 0; sec < 2; sec++) {
        if (rb_take(&r, 4, &p) < 0)
            return flm_error_set(err, FLM_EFORMAT, "record ends inside its header at byte %zu",
                                 r.pos);
        uint32_t len = flm_get_u32(p);
        const uint8_t *body;
        if (rb_take(&r, len, &body) < 0)
            return flm_error_set(err, FLM_EFORMAT, "%s section of %u bytes overruns the record",
                                 sec ? "event" : "metadata", len);
        rbuf sub = {body, len, 0};
        if ((sec ? parse_events(&sub, v->n_events, NULL) : parse_meta(&sub, v->n_meta, NULL)) < 0)
            return flm_error_set(err, FLM_EFORMAT, "malformed %s section",
                                 sec ? "event" : "metadata");
        if (sec) {
            v->event_bytes = body;
            v->event_size = len;
        } else {
            v->meta_bytes = body;
            v->meta_size = len;
        }
    }
    if (r.pos != size)
        return flm_error_set(err, FLM_EFORMAT, "%zu trailing bytes after the record", size - r.pos);
    return 0;
}

int flm_record_to_sample(const flm_record_view *v, flm_sample **out, flm_error *err)
{
    flm_sample *s = NULL;
    int rc = flm_sample_create(&s, (int32_t)v->n_frames, err);
    if (rc < 0)
        return rc;
    size_t n = (size_t)FLM_N_CHANNELS * v->n_frames;
    memcpy(s->tokens, v->tokens, n * 4);
    memcpy(s->loss_class, v->loss_class, n);
    s->duration_s = v->duration_s;
    rbuf m = {v->meta_bytes, v->meta_size, 0}, e = {v->event_bytes, v->event_size, 0};
    if (flm_sample_set_id(s, v->id) || flm_sample_set_style(s, v->style) ||
        flm_sample_set_stage(s, v->stage) || flm_sample_set_language(s, v->language) ||
        flm_sample_set_corpus(s, v->corpus) || flm_sample_set_speakers(s, v->speakers) ||
        parse_meta(&m, v->n_meta, s) || parse_events(&e, v->n_events, s)) {
        flm_sample_destroy(&s);
        return flm_error_set(err, FLM_ENOMEM, "out of memory decoding a record");
    }
    *out = s;
    return 0;
}
