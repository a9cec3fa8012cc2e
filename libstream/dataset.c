#include "flm_dataset.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "flm_alloc.h"
#include "flm_index.h"
#include "flm_rng.h"
#include "flm_util.h"

#define CACHE_SIZE 16 /* open shard readers kept per dataset handle */

struct flm_dataset {
    char **shard_paths; /* [n_shards], resolved against the index directory */
    int64_t n_shards;
    char **corpora; /* [n_corpora] distinct corpus names */
    int64_t n_corpora;
    char **keys;      /* [n] sample keys (for keyed draws) */
    int32_t *shard;   /* [n] index into shard_paths */
    uint32_t *record; /* [n] */
    uint16_t *corpus; /* [n] index into corpora */
    int32_t *frames;  /* [n] */
    int64_t n;
    struct {
        int64_t shard;
        uint64_t last_use;
        flm_shard_reader *r;
    } cache[CACHE_SIZE];
    uint64_t clock;
};

typedef struct loader {
    flm_dataset *ds;
    const flm_index *idx;
    const char *index_path;
    flm_error *err;
    int64_t *dense; /* dense shard number k -> shard id (ascending) */
    size_t cap_dense, cap_paths, cap_corpora;
    int64_t i;
} loader;

static int load_shard(void *user, int64_t id, const char *path)
{
    loader *L = user;
    flm_dataset *ds = L->ds;
    if (!path)
        return flm_error_set(L->err, FLM_ECORRUPT, "index %s: shard %lld has no path",
                             L->index_path, (long long)id);
    if (flm_grow((void **)&L->dense, &L->cap_dense, (size_t)ds->n_shards + 1, sizeof *L->dense) <
            0 ||
        flm_grow((void **)&ds->shard_paths, &L->cap_paths, (size_t)ds->n_shards + 1,
                 sizeof *ds->shard_paths) < 0 ||
        !(ds->shard_paths[ds->n_shards] = flm_path_join(flm_index_dir(L->idx), path)))
        return flm_error_set(L->err, FLM_ENOMEM, "index %s: out of memory", L->index_path);
    L->dense[ds->n_shards++] = id;
    return 0;
}

static int load_sample(void *user, const char *key, int64_t sid, int64_t rec, const char *corpus,
                       int64_t frames)
{
    loader *L = user;
    flm_dataset *ds = L->ds;
    if (L->i >= ds->n) /* written since it was counted: read what was counted */
        return 0;
    int64_t c = 0;
    while (c < ds->n_corpora && strcmp(ds->corpora[c], corpus) != 0)
        c++;
    if (c == ds->n_corpora) {
        if (c >= 65535 ||
            flm_grow((void **)&ds->corpora, &L->cap_corpora, (size_t)c + 1, sizeof *ds->corpora) <
                0 ||
            !(ds->corpora[c] = flm_strdup(corpus)))
            return flm_error_set(L->err, FLM_ENOMEM, "index %s: out of memory (or > 65535 corpora)",
                                 L->index_path);
        ds->n_corpora++;
    }
    if (!key)
        return flm_error_set(L->err, FLM_ECORRUPT, "index %s: sample %lld has no key",
                             L->index_path, (long long)L->i);
    int64_t i = L->i;
    if (!(ds->keys[i] = flm_strdup(key)))
        return flm_error_set(L->err, FLM_ENOMEM, "out of memory");
    int64_t lo = 0, hi = ds->n_shards;
    while (lo < hi) { /* the shard's dense number: binary search of the sorted ids */
        int64_t mid = lo + (hi - lo) / 2;
        if (L->dense[mid] < sid)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == ds->n_shards || L->dense[lo] != sid || rec < 0 || rec > UINT32_MAX || frames < 0 ||
        frames > FLM_MAX_FRAMES)
        return flm_error_set(L->err, FLM_ECORRUPT,
                             "index %s: sample %s: shard id %lld, record %lld, %lld frames: %s",
                             L->index_path, key, (long long)sid, (long long)rec, (long long)frames,
                             lo == ds->n_shards || L->dense[lo] != sid ? "no such shard"
                                                                       : "out of range");
    ds->shard[i] = (int32_t)lo;
    ds->record[i] = (uint32_t)rec;
    ds->corpus[i] = (uint16_t)c;
    ds->frames[i] = (int32_t)frames;
    L->i++;
    return 0;
}

/* The sample table, read once through the index module. */
static int load(flm_dataset *ds, const char *index_path, flm_error *err)
{
    flm_index *idx = NULL;
    int rc = flm_index_open(&idx, index_path, FLM_INDEX_READONLY, err);
    if (rc < 0)
        return rc;
    loader L = {ds, idx, index_path, err, NULL, 0, 0, 0, 0};
    if ((rc = flm_index_each_shard(idx, load_shard, &L, err)) == 0 &&
        (ds->n = flm_index_count_samples(idx, err)) < 0)
        rc = (int)ds->n;
    if (rc == 0) {
        size_t n = (size_t)ds->n + 1;
        ds->keys = flm_calloc(n, sizeof *ds->keys);
        ds->shard = flm_malloc(n * sizeof *ds->shard);
        ds->record = flm_malloc(n * sizeof *ds->record);
        ds->corpus = flm_malloc(n * sizeof *ds->corpus);
        ds->frames = flm_malloc(n * sizeof *ds->frames);
        if (!ds->keys || !ds->shard || !ds->record || !ds->corpus || !ds->frames)
            rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
    }
    if (rc == 0 && (rc = flm_index_each_sample(idx, load_sample, &L, err)) == 0)
        ds->n = L.i;
    flm_free(L.dense);
    flm_index_close(&idx);
    return rc;
}

int flm_dataset_open(flm_dataset **out, const char *index_path, flm_error *err)
{
    *out = NULL;
    flm_dataset *ds = flm_calloc(1, sizeof *ds);
    if (!ds)
        return flm_error_set(err, FLM_ENOMEM, "out of memory");
    for (int k = 0; k < CACHE_SIZE; k++)
        ds->cache[k].shard = -1;
    int rc = load(ds, index_path, err);
    if (rc < 0) {
        flm_dataset_close(&ds);
        return rc;
    }
    *out = ds;
    return 0;
}

void flm_dataset_close(flm_dataset **dp)
{
    flm_dataset *ds = *dp;
    if (!ds)
        return;
    for (int k = 0; k < CACHE_SIZE; k++)
        flm_shard_reader_close(&ds->cache[k].r);
    for (int64_t i = 0; ds->shard_paths && i < ds->n_shards; i++)
        flm_free(ds->shard_paths[i]);
    for (int64_t i = 0; ds->corpora && i < ds->n_corpora; i++)
        flm_free(ds->corpora[i]);
    for (int64_t i = 0; ds->keys && i < ds->n; i++)
        flm_free(ds->keys[i]);
    flm_free(ds->shard_paths);
    flm_free(ds->corpora);
    flm_free(ds->keys);
    flm_free(ds->shard);
    flm_free(ds->record);
    flm_free(ds->corpus);
    flm_free(ds->frames);
    flm_free(ds);
    *dp = NULL;
}

int64_t flm_dataset_count(const flm_dataset *ds)
{
    return ds->n;
}

const char *flm_dataset_location(const flm_dataset *ds, int64_t i, uint64_t *record)
{
    if (i < 0 || i >= ds->n)
        return NULL;
    if (record)
        *record = ds->record[i];
    return ds->shard_paths[ds->shard[i]];
}

const char *flm_dataset_corpus(const flm_dataset *ds, int64_t i)
{
    return i >= 0 && i < ds->n ? ds->corpora[ds->corpus[i]] : NULL;
}

int32_t flm_dataset_frames(const flm_dataset *ds, int64_t i)
{
    return i >= 0 && i < ds->n ? ds->frames[i] : -1;
}

int flm_dataset_read(flm_dataset *ds, int64_t i, flm_record_view *v, flm_error *err)
{
    if (i < 0 || i >= ds->n)
        return flm_error_set(err, FLM_ERANGE, "sample %lld out of range (%lld samples)",
                             (long long)i, (long long)ds->n);
    int64_t sh = ds->shard[i];
    int slot = -1, lru = 0;
    for (int k = 0; k < CACHE_SIZE; k++) {
        if (ds->cache[k].shard == sh && ds->cache[k].r)
            slot = k;
        if (ds->cache[k].last_use < ds->cache[lru].last_use)
            lru = k;
    }
    if (slot < 0) {
        slot = lru;
        flm_shard_reader_close(&ds->cache[slot].r);
        ds->cache[slot].shard = -1;
        int rc = flm_shard_reader_open(&ds->cache[slot].r, ds->shard_paths[sh], err);
        if (rc < 0)
            return rc;
        ds->cache[slot].shard = sh;
    }
    ds->cache[slot].last_use = ++ds->clock;
    int rc = flm_shard_reader_view(ds->cache[slot].r, ds->record[i], v, err);
    if (rc == 0 && (!v->id || strcmp(v->id, ds->keys[i]) != 0))
        rc = flm_error_set(err, FLM_EMISMATCH,
                           "shard %s: record %u holds sample \"%s\", the index says \"%s\"",
                           ds->shard_paths[sh], ds->record[i], v->id ? v->id : "", ds->keys[i]);
    return rc;
}

/* ---- epochs ---------------------------------------------------------------------------- */

struct flm_epoch {
    int32_t *order; /* [n_global] dataset sample numbers in epoch order */
    int64_t n_global;
    int64_t start;
    int32_t rank, world;
    int64_t size; /* per rank */
};

flm_epoch_params flm_epoch_default_params(void)
{
    flm_epoch_params p;
    memset(&p, 0, sizeof p);
    p.world = 1;
    p.default_weight = 1.0;
    p.shuffle = 1;
    return p;
}

int flm_epoch_create(flm_epoch **out, const flm_dataset *ds, const flm_epoch_params *p,
                     flm_error *err)
{
    *out = NULL;
    if (p->world < 1 || p->rank < 0 || p->rank >= p->world)
        return flm_error_set(err, FLM_EINVAL, "rank %d of world %d: need 0 <= rank < world",
                             p->rank, p->world);
    if (p->start < 0)
        return flm_error_set(err, FLM_EINVAL, "start %lld is negative", (long long)p->start);
    double *w = flm_malloc(sizeof(double) * (size_t)(ds->n_corpora + 1));
    if (!w)
        return flm_error_set(err, FLM_ENOMEM, "out of memory");
    for (int64_t c = 0; c < ds->n_corpora; c++)
        w[c] = p->default_weight;
    for (size_t k = 0; k < p->n_weights; k++) {
        if (!(p->weights[k] >= 0) || !isfinite(p->weights[k]) || p->weights[k] > 1000) {
            flm_free(w);
            return flm_error_set(err, FLM_EINVAL, "weight of corpus \"%s\" is %g (need 0..1000)",
                                 p->corpora[k], p->weights[k]);
        }
        for (int64_t c = 0; c < ds->n_corpora; c++)
            if (strcmp(ds->corpora[c], p->corpora[k]) == 0)
                w[c] = p->weights[k];
    }
    /* 1. copies per sample */
    char tag[48];
    snprintf(tag, sizeof tag, "%llu/", (unsigned long long)p->epoch);
    size_t tlen = strlen(tag);
    int64_t total = 0;
    uint16_t *copies = flm_malloc(sizeof *copies * (size_t)(ds->n + 1));
    char *id = NULL;
    size_t id_cap = 0;
    int rc = copies ? 0 : flm_error_set(err, FLM_ENOMEM, "out of memory");
    for (int64_t i = 0; rc == 0 && i < ds->n; i++) {
        double wi = w[ds->corpus[i]];
        double fl = floor(wi);
        int64_t c = (int64_t)fl;
        if (wi > fl) {
            size_t need = tlen + strlen(ds->keys[i]) + 1;
            if (flm_grow((void **)&id, &id_cap, need, 1) < 0) {
                rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
                break;
            }
            memcpy(id, tag, tlen);
            memcpy(id + tlen, ds->keys[i], need - tlen);
            flm_rng r;
            flm_rng_init(&r, p->seed, id, "epoch.weight");
            c += flm_rng_bernoulli(&r, wi - fl);
        }
        copies[i] = (uint16_t)c;
        total += c;
    }
    flm_free(id);
    flm_free(w);
    flm_epoch *e = NULL;
    if (rc == 0 && total > INT32_MAX)
        rc = flm_error_set(err, FLM_ERANGE, "epoch of %lld samples is too large", (long long)total);
    if (rc == 0 && (!(e = flm_calloc(1, sizeof *e)) ||
                    !(e->order = flm_malloc(sizeof *e->order * (size_t)(total + 1)))))
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory for an epoch of %lld samples",
                           (long long)total);
    if (rc < 0) {
        flm_free(copies);
        if (e)
            flm_free(e->order);
        flm_free(e);
        return rc;
    }
    int64_t k = 0;
    for (int64_t i = 0; i < ds->n; i++)
        for (int c = 0; c < copies[i]; c++)
            e->order[k++] = (int32_t)i;
    flm_free(copies);
    /* 2. Fisher-Yates shuffle keyed by (seed, epoch) */
    if (p->shuffle) {
        flm_rng r;
        snprintf(tag, sizeof tag, "%llu", (unsigned long long)p->epoch);
        flm_rng_init(&r, p->seed, tag, "epoch.shuffle");
        for (int64_t i = total - 1; i > 0; i--) {
            int64_t j = i < UINT32_MAX ? (int64_t)flm_rng_below(&r, (uint32_t)(i + 1))
                                       : (int64_t)(flm_rng_u64(&r) % (uint64_t)(i + 1));
            int32_t t = e->order[i];
            e->order[i] = e->order[j];
            e->order[j] = t;
        }
    }
    /* 3. ranks */
    e->n_global = total;
    e->start = p->start < total ? p->start : total;
    e->rank = p->rank;
    e->world = p->world;
    e->size = (total - e->start) / p->world;
    *out = e;
    return 0;
}

void flm_epoch_destroy(flm_epoch **ep)
{
    flm_epoch *e = *ep;
    if (!e)
        return;
    flm_free(e->order);
    flm_free(e);
    *ep = NULL;
}

int64_t flm_epoch_global_size(const flm_epoch *e)
{
    return e->n_global;
}

int64_t flm_epoch_size(const flm_epoch *e)
{
    return e->size;
}

int64_t flm_epoch_position(const flm_epoch *e, int64_t k)
{
    return k >= 0 && k < e->size ? e->start + e->rank + k * e->world : -1;
}

int64_t flm_epoch_sample(const flm_epoch *e, int64_t k)
{
    int64_t pos = flm_epoch_position(e, k);
    return pos < 0 ? -1 : e->order[pos];
}
