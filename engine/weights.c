/* What Mimi and the LM share to own their buffers and load their tensors. See weights.h. */
#include "weights.h"

#include <string.h>

#include "flm_alloc.h"

/* ---------------------------------------------------------------- the allocation list */

void alloc_list_init(alloc_list *a, int flags)
{
    *a = (alloc_list){.flags = flags};
}

void *alloc_list_alloc(alloc_list *a, size_t bytes)
{
    void *p;
    if (a->n == a->cap && flm_grow((void **)&a->ptrs, &a->cap, a->n + 1, sizeof *a->ptrs) < 0)
        return NULL;
    if (!(a->flags & ALLOC_HUGE))
        p = a->flags & ALLOC_ZERO ? flm_calloc(1, bytes ? bytes : 1)
                                  : flm_malloc(bytes ? bytes : 1);
    else if ((p = flm_malloc_huge(bytes ? bytes : 1)) && (a->flags & ALLOC_ZERO))
        memset(p, 0, bytes);
    if (!p)
        return NULL;
    a->ptrs[a->n++] = p;
    a->size += bytes;
    return p;
}

void alloc_list_free(alloc_list *a)
{
    for (size_t i = 0; i < a->n; i++)
        flm_free(a->ptrs[i]);
    flm_free(a->ptrs);
    alloc_list_init(a, a->flags);
}

/* ---------------------------------------------------------------- loading tensors by name */

int weights_check(weights_src *w, const char *name, int n_dim, const int64_t *shape,
                  const flm_st_info **in)
{
    int rc = flm_safetensors_check(w->st, name, n_dim, shape, in, w->err);
    return rc < 0 ? rc : flm_safetensors_check_finite(*in, w->err);
}

static size_t numel(int n_dim, const int64_t *shape)
{
    size_t n = 1;
    for (int i = 0; i < n_dim; i++)
        n *= (size_t)shape[i];
    return n;
}

int weights_read_f32(weights_src *w, const flm_st_info *in, int n_dim, const int64_t *shape,
                     float *dst)
{
    int rc = flm_safetensors_read_f32(w->st, in->name, n_dim, shape, dst, w->err);
    if (rc == 0)
        flm_safetensors_release(w->st, in);
    return rc;
}

int weights_copy_f32(weights_src *w, const flm_st_info *in, int n_dim, const int64_t *shape,
                     float **out)
{
    float *dst = alloc_list_alloc(w->owner, numel(n_dim, shape) * sizeof *dst);
    if (!dst)
        return flm_error_set(w->err, FLM_ENOMEM, "%sout of memory loading '%s'", w->who, in->name);
    *out = dst;
    return weights_read_f32(w, in, n_dim, shape, dst);
}

int weights_stage_f32(weights_src *w, const flm_st_info *in, int n_dim, const int64_t *shape,
                      float **out)
{
    size_t n = numel(n_dim, shape);
    if (n > w->tmp_n) { /* float32 staging: the largest tensor */
        flm_free(w->tmp);
        w->tmp_n = 0;
        if (!(w->tmp = flm_malloc(n * sizeof *w->tmp)))
            return flm_error_set(w->err, FLM_ENOMEM, "%sout of memory loading '%s'", w->who,
                                 in->name);
        w->tmp_n = n;
    }
    *out = w->tmp;
    return weights_read_f32(w, in, n_dim, shape, w->tmp);
}

void weights_src_done(weights_src *w)
{
    flm_free(w->tmp);
    w->tmp = NULL;
    w->tmp_n = 0;
}
