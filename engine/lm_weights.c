/* FLM-Audio RQ-Transformer weights: loading (copied or mapped, in any weight format), random
 * checkpoints on disk, a random model in memory, writing a loaded model. See lm_internal.h. */
#include "lm_internal.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flm_alloc.h"
#include "flm_json.h"
#include "flm_kernels.h"
#include "flm_quant.h"
#include "flm_rng.h"
#include "flm_safetensors.h"
#include "flm_util.h"

/* ---------------------------------------------------------------- loading */

typedef struct load_ctx {
    flm_lm *m;
    weights_src w; /* the checkpoint, m->allocs, the error */
    char *seen;    /* [count]: tensors of the file the table used */
    int mapped;    /* FLM_LM_LOAD_MAPPED */
} load_ctx;

/* Position of name in the handle's sorted tensor list (-1 if absent). */
static int st_index(const flm_safetensors *st, const char *name)
{
    int lo = 0, hi = flm_safetensors_count(st) - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(flm_safetensors_at(st, mid)->name, name);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* A stored tensor whose bytes already are the in-memory layout, served from the mapping when the
 * load asks for it and the data is aligned for the kernels' element loads (a file may place a
 * tensor at any offset); NULL: the caller copies it. */
static void *map_tensor(load_ctx *L, const flm_st_info *in, size_t align)
{
    if (!L->mapped || (uintptr_t)in->data % align)
        return NULL;
    L->m->mapped_size += in->size;
    return (void *)in->data; /* read only: nothing writes the weights of a loaded model */
}

/* A matrix stored quantized by flm_lm_write (codes as I8 / U8 plus NAME.qscale): used as is when
 * the load asks for the stored format (copied, or with FLM_LM_LOAD_MAPPED served from the mapping,
 * codes and scales each where aligned), else expanded and converted. */
static int load_quantized(load_ctx *L, const wdesc *d, const flm_st_info *sin)
{
    flm_lm *m = L->m;
    const flm_st_info *in = flm_safetensors_find(L->w.st, d->name);
    int rows = (int)d->shape[0], cols = (int)d->shape[1], nb = (cols + FLM_QBLOCK - 1) / FLM_QBLOCK;
    flm_wtype st = in && in->dtype == FLM_DTYPE_I8 ? FLM_W_Q8 : FLM_W_Q4;
    int64_t want[2] = {rows, st == FLM_W_Q8 ? cols : (cols + 1) / 2}, wscale[2] = {rows, nb};
    char a[64], b[64];
    if (!in || (in->dtype != FLM_DTYPE_I8 && in->dtype != FLM_DTYPE_U8) || in->n_dim != 2 ||
        in->shape[0] != want[0] || in->shape[1] != want[1]) {
        flm_shape_format(a, sizeof a, 2, want);
        flm_shape_format(b, sizeof b, in ? in->n_dim : 0, in ? in->shape : want);
        return flm_error_set(L->w.err, FLM_EMISMATCH,
                             "%s: tensor '%s' has quantization scales but is %s %s, expected I8 "
                             "%s (q8) or U8 of half the columns (q4)",
                             sin->file, d->name, in ? flm_dtype_name(in->dtype) : "missing",
                             in ? b : "", a);
    }
    if (sin->dtype != FLM_DTYPE_F32 || sin->n_dim != 2 || sin->shape[0] != rows ||
        sin->shape[1] != nb) {
        flm_shape_format(a, sizeof a, 2, wscale);
        flm_shape_format(b, sizeof b, sin->n_dim, sin->shape);
        return flm_error_set(L->w.err, FLM_EMISMATCH, "%s: tensor '%s': %s %s, expected F32 %s",
                             sin->file, sin->name, flm_dtype_name(sin->dtype), b, a);
    }
    int rc = flm_safetensors_check_finite(sin, L->w.err); /* the codes are integers */
    if (rc < 0)
        return rc;
    L->seen[st_index(L->w.st, d->name)] = L->seen[st_index(L->w.st, sin->name)] = 1;
    size_t qs, ss, n = (size_t)rows * cols;
    flm_qmat_sizes(m->wtype, rows, cols, &qs, &ss);
    void *q = m->wtype == st ? map_tensor(L, in, 1) : NULL;
    float *sc = m->wtype == st ? map_tensor(L, sin, sizeof *sc) : NULL;
    if ((!q && !(q = alloc_list_alloc(&m->allocs, qs))) ||
        (ss && !sc && !(sc = alloc_list_alloc(&m->allocs, ss))))
        return flm_error_set(L->w.err, FLM_ENOMEM, "out of memory loading '%s'", d->name);
    flm_qmat_init(d->mat, m->wtype, rows, cols, q, sc);
    if (m->wtype == st) { /* the stored codes and scales as they are */
        if (q != in->data) {
            memcpy(q, in->data, qs);
            flm_safetensors_release(L->w.st, in);
        }
        if (sc != sin->data) {
            memcpy(sc, sin->data, ss); /* may be unaligned in the file */
            flm_safetensors_release(L->w.st, sin);
        }
        return 0;
    }
    float *stored_sc = flm_malloc((size_t)rows * nb * sizeof *stored_sc);
    if (!stored_sc)
        return flm_error_set(L->w.err, FLM_ENOMEM, "out of memory loading '%s'", d->name);
    memcpy(stored_sc, sin->data, (size_t)rows * nb * sizeof *stored_sc); /* may be unaligned */
    flm_qmat view;
    float *f = m->wtype == FLM_W_F32 ? q : flm_malloc(n * sizeof *f);
    flm_qmat_init(&view, st, rows, cols, (void *)in->data, stored_sc);
    for (int r = 0; f && r < rows; r++)
        flm_qmat_row(&view, r, f + (size_t)r * cols);
    if (f && m->wtype != FLM_W_F32) {
        flm_qmat_quantize(d->mat, f);
        flm_free(f);
    } else if (!f) {
        flm_free(stored_sc);
        return flm_error_set(L->w.err, FLM_ENOMEM, "out of memory loading '%s'", d->name);
    }
    flm_free(stored_sc);
    flm_safetensors_release(L->w.st, in);
    flm_safetensors_release(L->w.st, sin);
    return 0;
}

static int load_one(void *ctx, const wdesc *d)
{
    load_ctx *L = ctx;
    const flm_st_info *in;
    if (d->mat) {
        char sname[192];
        snprintf(sname, sizeof sname, "%s.qscale", d->name);
        const flm_st_info *sin = flm_safetensors_find(L->w.st, sname);
        if (sin)
            return load_quantized(L, d, sin);
    }
    int rc = weights_check(&L->w, d->name, d->n_dim, d->shape, &in);
    if (rc < 0)
        return rc;
    int at = st_index(L->w.st, d->name);
    if (at >= 0)
        L->seen[at] = 1;
    if (d->dst)
        return weights_copy_f32(&L->w, in, d->n_dim, d->shape, d->dst);
    flm_lm *m = L->m;
    int rows = (int)d->shape[0], cols = (int)d->shape[1];
    size_t qs, ss;
    flm_qmat_sizes(m->wtype, rows, cols, &qs, &ss);
    void *mq = m->wtype == FLM_W_F32 && in->dtype == FLM_DTYPE_F32     ? map_tensor(L, in, 4)
               : m->wtype == FLM_W_BF16 && in->dtype == FLM_DTYPE_BF16 ? map_tensor(L, in, 2)
                                                                       : NULL;
    if (mq) { /* computed from the mapping: its pages stay */
        flm_qmat_init(d->mat, m->wtype, rows, cols, mq, NULL);
        return 0;
    }
    void *q = alloc_list_alloc(&m->allocs, qs);
    float *sc = ss ? alloc_list_alloc(&m->allocs, ss) : NULL, *f;
    if (!q || (ss && !sc))
        return flm_error_set(L->w.err, FLM_ENOMEM, "out of memory loading '%s' (%.1f MB)", d->name,
                             (qs + ss) / 1e6);
    flm_qmat_init(d->mat, m->wtype, rows, cols, q, sc);
    if (m->wtype == FLM_W_F32) /* the matrix is a float32 copy */
        return weights_read_f32(&L->w, in, 2, d->shape, q);
    if ((rc = weights_stage_f32(&L->w, in, 2, d->shape, &f)) == 0)
        flm_qmat_quantize(d->mat, f);
    return rc;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

int flm_lm_load(flm_lm **out, const char *dir, flm_wtype wtype, int flags, flm_error *err)
{
    flm_lm *m = NULL;
    flm_safetensors *st = NULL;
    char *json = NULL, *seen = NULL, *cpath = flm_path_join(dir, "config.json");
    size_t n;
    int rc;
    *out = NULL;
    if (!cpath)
        return flm_error_set(err, FLM_ENOMEM, "out of memory");
    if ((rc = flm_read_file(cpath, &json, &n, CONFIG_MAX_SIZE, err)) < 0)
        goto done;
    if (!(m = flm_calloc(1, sizeof *m))) {
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
        goto done;
    }
    alloc_list_init(&m->allocs, ALLOC_HUGE);
    m->wtype = wtype;
    if (wtype < 0 || wtype >= FLM_W_COUNT) {
        rc = flm_error_set(err, FLM_EINVAL, "unknown weight format %d", (int)wtype);
        goto done;
    }
    if ((rc = flm_lm_config_parse(json, n, cpath, &m->cfg, err)) < 0)
        goto done;
    const flm_lm_config *c = &m->cfg;
    if ((rc = flm_safetensors_open(&st, dir, err)) < 0)
        goto done;
    m->L = alloc_list_alloc(&m->allocs, (size_t)c->n_layers * sizeof *m->L);
    m->D = alloc_list_alloc(&m->allocs, (size_t)c->dep_layers * sizeof *m->D);
    if (!m->L || !m->D) {
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
        goto done;
    }
    memset(m->L, 0, (size_t)c->n_layers * sizeof *m->L);
    memset(m->D, 0, (size_t)c->dep_layers * sizeof *m->D);
    load_ctx L = {.m = m,
                  .w = {.st = st, .owner = &m->allocs, .who = "", .err = err},
                  .seen = flm_calloc((size_t)flm_safetensors_count(st) + 1, 1),
                  .mapped = !!(flags & FLM_LM_LOAD_MAPPED)};
    if (!L.seen) {
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
        goto done;
    }
    rc = lm_walk(c, m, load_one, &L);
    weights_src_done(&L.w);
    seen = L.seen;
    if (rc < 0) {
        if (rc != FLM_ECORRUPT) /* a non-finite weight matches the config; it is just broken */
            flm_error_prefix(err, "weights do not match %s", cpath);
        goto done;
    }
    if (c->tie_embeddings)
        m->lm_head = m->text_emb;
    /* every tensor must be accounted for: an extra layer means config and weights disagree */
    for (int i = 0; i < flm_safetensors_count(st); i++) {
        const flm_st_info *in = flm_safetensors_at(st, i);
        if (!L.seen[i] && !ends_with(in->name, "rotary_emb.inv_freq")) {
            rc = flm_error_set(err, FLM_EMISMATCH,
                               "%s: tensor '%s' is not part of the model %s describes (%d "
                               "layers, %d depth layers, tie_word_embeddings %s)",
                               in->file, in->name, cpath, c->n_layers, c->dep_layers,
                               c->tie_embeddings ? "true" : "false");
            goto done;
        }
    }
    if (m->mapped_size) { /* the model computes from the mapping: it keeps the files open */
        m->st = st;
        st = NULL;
    }
    *out = m;
    m = NULL;
    rc = 0;
done:
    flm_safetensors_close(&st); /* copied weights never touch the mapping */
    flm_lm_destroy(&m);
    flm_free(seen);
    flm_free(json);
    flm_free(cpath);
    return rc;
}

void flm_lm_destroy(flm_lm **pm)
{
    flm_lm *m = pm ? *pm : NULL;
    if (!m)
        return;
    alloc_list_free(&m->allocs);
    flm_safetensors_close(&m->st);
    flm_free(m);
    *pm = NULL;
}

const flm_lm_config *flm_lm_get_config(const flm_lm *m)
{
    return &m->cfg;
}

flm_wtype flm_lm_weight_type(const flm_lm *m)
{
    return m->wtype;
}

size_t flm_lm_weight_size(const flm_lm *m)
{
    return m->allocs.size + m->mapped_size;
}

size_t flm_lm_mapped_size(const flm_lm *m)
{
    return m->mapped_size;
}

/* ---------------------------------------------------------------- random checkpoints */

typedef struct wr_tensor {
    char name[160];
    int n_dim;
    int64_t shape[2];
    int init;
    uint64_t bytes;
    int shard;
} wr_tensor;

typedef struct wr_list {
    wr_tensor *t;
    int n, cap;
    size_t esize;
} wr_list;

static int list_one(void *ctx, const wdesc *d)
{
    wr_list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = (size_t)l->cap;
        if (flm_grow((void **)&l->t, &cap, (size_t)l->n + 1, sizeof *l->t) < 0)
            return FLM_ENOMEM;
        l->cap = (int)cap;
    }
    wr_tensor *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", d->name);
    t->n_dim = d->n_dim;
    t->shape[0] = d->shape[0];
    t->shape[1] = d->shape[1];
    t->init = d->init;
    t->bytes = (uint64_t)d->shape[0] * (uint64_t)(d->n_dim == 2 ? d->shape[1] : 1) * l->esize;
    return 0;
}

/* The safetensors header of one shard: its tensors in table order, 8-byte aligned. */
static char *shard_header(const wr_list *l, int shard, flm_dtype dt, size_t *len)
{
    json_t *h = json_object();
    uint64_t off = 0;
    json_object_set_new(h, "__metadata__", json_pack("{s:s}", "format", "pt"));
    for (int i = 0; i < l->n; i++) {
        const wr_tensor *t = &l->t[i];
        if (t->shard != shard)
            continue;
        json_t *shape = json_array();
        for (int k = 0; k < t->n_dim; k++)
            json_array_append_new(shape, json_integer(t->shape[k]));
        json_object_set_new(h, t->name,
                            json_pack("{s:s,s:o,s:[I,I]}", "dtype", flm_dtype_name(dt), "shape",
                                      shape, "data_offsets", (json_int_t)off,
                                      (json_int_t)(off + t->bytes)));
        off += t->bytes;
    }
    char *s = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    if (!s)
        return NULL;
    size_t n = strlen(s), padded = (n + 7) / 8 * 8;
    char *out = flm_malloc(padded + 1);
    if (out) {
        memcpy(out, s, n);
        memset(out + n, ' ', padded - n);
        out[padded] = 0;
        *len = padded;
    }
    free(s);
    return out;
}

#define GEN_CHUNK 65536

static int write_shard(const wr_list *l, int shard, flm_dtype dt, uint64_t seed, const char *path,
                       flm_error *err)
{
    size_t hlen = 0;
    char *hdr = shard_header(l, shard, dt, &hlen);
    char *tmp = flm_malloc(strlen(path) + 8);
    float *buf = flm_malloc(GEN_CHUNK * sizeof *buf);
    uint16_t *half = flm_malloc(GEN_CHUNK * sizeof *half);
    FILE *f = NULL;
    int rc = 0;
    if (!hdr || !tmp || !buf || !half) {
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
        goto done;
    }
    sprintf(tmp, "%s.tmp", path);
    if (!(f = fopen(tmp, "wb"))) {
        rc = flm_error_set(err, FLM_EIO, "%s: cannot create: %s", tmp, strerror(errno));
        goto done;
    }
    uint8_t le[8];
    for (int k = 0; k < 8; k++)
        le[k] = (uint8_t)((uint64_t)hlen >> (8 * k));
    int ok = fwrite(le, 1, 8, f) == 8 && fwrite(hdr, 1, hlen, f) == hlen;
    for (int i = 0; i < l->n && ok; i++) {
        const wr_tensor *t = &l->t[i];
        if (t->shard != shard)
            continue;
        flm_rng r;
        flm_rng_init(&r, seed, t->name, "model.init");
        uint64_t n = (uint64_t)t->shape[0] * (uint64_t)(t->n_dim == 2 ? t->shape[1] : 1);
        for (uint64_t at = 0; at < n && ok; at += GEN_CHUNK) {
            size_t m = n - at < GEN_CHUNK ? (size_t)(n - at) : GEN_CHUNK;
            for (size_t j = 0; j < m; j++)
                buf[j] = t->init == INIT_NORM ? (float)(1.0 + 0.1 * flm_rng_normal(&r))
                                              : (float)(0.02 * flm_rng_normal(&r));
            if (dt == FLM_DTYPE_BF16) {
                flm_f32_to_bf16(buf, half, m);
                ok = fwrite(half, 2, m, f) == m;
            } else {
                ok = fwrite(buf, 4, m, f) == m;
            }
        }
    }
    if (fclose(f) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) < 0) {
        rc = flm_error_set(err, FLM_EIO, "%s: write failed: %s", path, strerror(errno));
        unlink(tmp);
    }
done:
    flm_free(hdr);
    flm_free(tmp);
    flm_free(buf);
    flm_free(half);
    return rc;
}

static int write_text(const char *path, const char *text, flm_error *err)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0)
        ok = 0;
    return ok ? 0 : flm_error_set(err, FLM_EIO, "%s: cannot write: %s", path, strerror(errno));
}

int flm_lm_write_random(const flm_lm_config *c, uint64_t seed, flm_dtype dtype,
                        uint64_t shard_bytes, const char *dir, flm_error *err)
{
    wr_list l = {.esize = flm_dtype_size(dtype)};
    char *cfg = NULL, path[4096];
    int rc, n_shards = 1;
    if (dtype != FLM_DTYPE_F32 && dtype != FLM_DTYPE_BF16)
        return flm_error_set(err, FLM_EINVAL, "model init: dtype must be F32 or BF16");
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return flm_error_set(err, FLM_EIO, "%s: cannot create: %s", dir, strerror(errno));
    if ((rc = lm_walk(c, NULL, list_one, &l)) < 0) {
        rc = flm_error_set(err, rc, "out of memory");
        goto done;
    }
    uint64_t in_shard = 0;
    for (int i = 0; i < l.n; i++) {
        if (shard_bytes && in_shard > 0 && in_shard + l.t[i].bytes > shard_bytes) {
            n_shards++;
            in_shard = 0;
        }
        l.t[i].shard = n_shards - 1;
        in_shard += l.t[i].bytes;
    }
    if (!(cfg = flm_lm_config_to_json(c))) {
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    if ((rc = write_text(path, cfg, err)) < 0)
        goto done;
    if (!shard_bytes) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        rc = write_shard(&l, 0, dtype, seed, path, err);
        goto done;
    }
    json_t *map = json_object();
    uint64_t total = 0;
    for (int i = 0; i < l.n; i++) {
        char name[64];
        snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", l.t[i].shard + 1, n_shards);
        json_object_set_new(map, l.t[i].name, json_string(name));
        total += l.t[i].bytes;
    }
    for (int s = 0; s < n_shards && rc == 0; s++) {
        snprintf(path, sizeof path, "%s/model-%05d-of-%05d.safetensors", dir, s + 1, n_shards);
        rc = write_shard(&l, s, dtype, seed, path, err);
    }
    json_t *idx =
        json_pack("{s:{s:I},s:o}", "metadata", "total_size", (json_int_t)total, "weight_map", map);
    char *text = idx ? json_dumps(idx, JSON_INDENT(2)) : NULL;
    json_decref(idx);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (rc == 0)
        rc = text ? write_text(path, text, err) : flm_error_set(err, FLM_ENOMEM, "out of memory");
    free(text);
done:
    flm_free(cfg);
    flm_free(l.t);
    return rc;
}

/* ---------------------------------------------------------------- in-memory random model */

typedef struct rand_ctx {
    flm_lm *m;
    uint64_t state;
    float *buf; /* [RAND_ROWS_MAX] staging */
    size_t buf_n;
    flm_error *err;
} rand_ctx;

/* uniform in [-a, a) from splitmix64: fast enough for 8 billion weights */
static float fast_uniform(uint64_t *s, float a)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return ((float)(z >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * a;
}

static int rand_one(void *ctx, const wdesc *d)
{
    rand_ctx *R = ctx;
    flm_lm *m = R->m;
    /* the spread of the checkpoint init: std 0.02 (uniform a = 0.02 sqrt 3), norms 1 +- 0.1 */
    float a = d->init == INIT_NORM ? 0.1f : 0.0346f, base = d->init == INIT_NORM ? 1.0f : 0.0f;
    size_t rows = (size_t)d->shape[0], cols = d->n_dim == 2 ? (size_t)d->shape[1] : 1;
    if (d->dst) {
        float *v = alloc_list_alloc(&m->allocs, rows * cols * sizeof *v);
        if (!v)
            return flm_error_set(R->err, FLM_ENOMEM, "out of memory for '%s'", d->name);
        for (size_t i = 0; i < rows * cols; i++)
            v[i] = base + fast_uniform(&R->state, a);
        *d->dst = v;
        return 0;
    }
    size_t qs, ss;
    flm_qmat_sizes(m->wtype, (int)rows, (int)cols, &qs, &ss);
    void *q = alloc_list_alloc(&m->allocs, qs);
    float *sc = ss ? alloc_list_alloc(&m->allocs, ss) : NULL;
    if (!q || (ss && !sc))
        return flm_error_set(R->err, FLM_ENOMEM, "out of memory for '%s' (%.1f MB)", d->name,
                             (qs + ss) / 1e6);
    flm_qmat_init(d->mat, m->wtype, (int)rows, (int)cols, q, sc);
    size_t per = R->buf_n / cols ? R->buf_n / cols : 1;
    if (per * cols > R->buf_n) { /* one row wider than the staging buffer */
        flm_free(R->buf);
        R->buf_n = 0;
        if (!(R->buf = flm_malloc(cols * sizeof *R->buf)))
            return flm_error_set(R->err, FLM_ENOMEM, "out of memory");
        R->buf_n = cols;
    }
    for (size_t r0 = 0; r0 < rows; r0 += per) {
        size_t n = rows - r0 < per ? rows - r0 : per;
        for (size_t i = 0; i < n * cols; i++)
            R->buf[i] = fast_uniform(&R->state, a);
        flm_qmat slice = flm_qmat_slice(d->mat, (int)r0, (int)n);
        flm_qmat_quantize(&slice, R->buf);
    }
    return 0;
}

int flm_lm_create_random(flm_lm **out, const flm_lm_config *c, flm_wtype wtype, uint64_t seed,
                         flm_error *err)
{
    flm_lm *m = flm_calloc(1, sizeof *m);
    rand_ctx R = {.m = m, .state = seed, .buf_n = 1 << 20, .err = err};
    int rc = FLM_ENOMEM;
    *out = NULL;
    if (!m || wtype < 0 || wtype >= FLM_W_COUNT) {
        flm_free(m);
        return flm_error_set(err, m ? FLM_EINVAL : FLM_ENOMEM, "random model: bad arguments");
    }
    alloc_list_init(&m->allocs, ALLOC_HUGE);
    m->cfg = *c;
    m->wtype = wtype;
    m->L = alloc_list_alloc(&m->allocs, (size_t)c->n_layers * sizeof *m->L);
    m->D = alloc_list_alloc(&m->allocs, (size_t)c->dep_layers * sizeof *m->D);
    R.buf = flm_malloc(R.buf_n * sizeof *R.buf);
    if (m->L && m->D && R.buf) {
        memset(m->L, 0, (size_t)c->n_layers * sizeof *m->L);
        memset(m->D, 0, (size_t)c->dep_layers * sizeof *m->D);
        rc = lm_walk(c, m, rand_one, &R);
    } else {
        flm_error_set(err, rc, "random model: out of memory");
    }
    flm_free(R.buf);
    if (rc < 0) {
        flm_lm_destroy(&m);
        return rc;
    }
    if (c->tie_embeddings)
        m->lm_head = m->text_emb;
    *out = m;
    return 0;
}

/* ---------------------------------------------------------------- writing a loaded model */

typedef struct out_tensor {
    char name[192];
    flm_dtype dtype;
    int64_t shape[2];
    const void *data;
    size_t bytes;
} out_tensor;

typedef struct out_list {
    out_tensor *t;
    size_t n, cap;
} out_list;

static int out_add(out_list *o, const char *name, flm_dtype dt, int64_t r, int64_t c,
                   const void *data, size_t bytes)
{
    if (o->n == o->cap && flm_grow((void **)&o->t, &o->cap, o->n + 1, sizeof *o->t) < 0)
        return FLM_ENOMEM;
    out_tensor *t = &o->t[o->n++];
    *t = (out_tensor){.dtype = dt, .shape = {r, c}, .data = data, .bytes = bytes};
    snprintf(t->name, sizeof t->name, "%s", name);
    return 0;
}

static int out_one(void *ctx, const wdesc *d)
{
    out_list *o = ctx;
    if (d->dst)
        return out_add(o, d->name, FLM_DTYPE_F32, d->shape[0], d->n_dim == 2 ? d->shape[1] : 0,
                       *d->dst, (size_t)d->shape[0] * (d->n_dim == 2 ? d->shape[1] : 1) * 4);
    const flm_qmat *q = d->mat;
    size_t qs, ss;
    flm_qmat_sizes(q->type, q->rows, q->cols, &qs, &ss);
    static const flm_dtype dt[FLM_W_COUNT] = {FLM_DTYPE_F32, FLM_DTYPE_BF16, FLM_DTYPE_I8,
                                              FLM_DTYPE_U8};
    int64_t cols = q->type == FLM_W_Q4 ? (q->cols + 1) / 2 : q->cols;
    if (out_add(o, d->name, dt[q->type], q->rows, cols, q->q, qs) < 0)
        return FLM_ENOMEM;
    if (!ss)
        return 0;
    char name[192];
    snprintf(name, sizeof name, "%s.qscale", d->name);
    return out_add(o, name, FLM_DTYPE_F32, q->rows, (int64_t)(ss / 4 / (size_t)q->rows), q->scale,
                   ss);
}

int flm_lm_write(const flm_lm *m, const char *dir, flm_error *err)
{
    out_list o = {0};
    char path[4096], tmp[4112], *cfg = NULL, *hdr = NULL;
    FILE *f = NULL;
    int rc;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return flm_error_set(err, FLM_EIO, "%s: cannot create: %s", dir, strerror(errno));
    /* lm_walk() writes through its pointers only when loading: a const model is safe here */
    if ((rc = lm_walk(&m->cfg, (flm_lm *)m, out_one, &o)) < 0) {
        rc = flm_error_set(err, rc, "out of memory");
        goto done;
    }
    json_t *h = json_object();
    uint64_t off = 0;
    json_object_set_new(
        h, "__metadata__",
        json_pack("{s:s,s:s}", "format", "pt", "flm.weights", flm_wtype_name(m->wtype)));
    for (size_t i = 0; i < o.n; i++) {
        const out_tensor *t = &o.t[i];
        json_t *shape = t->shape[1]
                            ? json_pack("[I,I]", (json_int_t)t->shape[0], (json_int_t)t->shape[1])
                            : json_pack("[I]", (json_int_t)t->shape[0]);
        json_object_set_new(h, t->name,
                            json_pack("{s:s,s:o,s:[I,I]}", "dtype", flm_dtype_name(t->dtype),
                                      "shape", shape, "data_offsets", (json_int_t)off,
                                      (json_int_t)(off + t->bytes)));
        off += t->bytes;
    }
    char *js = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    size_t hl = js ? (strlen(js) + 7) / 8 * 8 : 0;
    if (!js || !(hdr = flm_malloc(hl + 1)) || !(cfg = flm_lm_config_to_json(&m->cfg))) {
        free(js);
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
        goto done;
    }
    memset(hdr, ' ', hl);
    memcpy(hdr, js, strlen(js));
    free(js);
    snprintf(path, sizeof path, "%s/config.json", dir);
    if ((rc = write_text(path, cfg, err)) < 0)
        goto done;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    uint8_t le[8];
    for (int k = 0; k < 8; k++)
        le[k] = (uint8_t)((uint64_t)hl >> (8 * k));
    int ok = (f = fopen(tmp, "wb")) && fwrite(le, 1, 8, f) == 8 && fwrite(hdr, 1, hl, f) == hl;
    for (size_t i = 0; i < o.n && ok; i++)
        ok = fwrite(o.t[i].data, 1, o.t[i].bytes, f) == o.t[i].bytes;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) < 0) {
        rc = flm_error_set(err, FLM_EIO, "%s: write failed: %s", path, strerror(errno));
        unlink(tmp);
    }
done:
    flm_free(o.t);
    flm_free(hdr);
    flm_free(cfg);
    return rc;
}
