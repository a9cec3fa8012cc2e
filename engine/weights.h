/* weights.h - what Mimi (mimi*.c) and the LM (lm*.c) share to own their buffers and to load their
 * tensors from a checkpoint (engine/weights.c; not installed).
 *
 *     alloc_list a;
 *     alloc_list_init(&a, ALLOC_ZERO);
 *     float *x = alloc_list_alloc(&a, n * sizeof *x);  // NULL: out of memory
 *     ...
 *     alloc_list_free(&a);                             // every buffer at once
 *
 *     weights_src w = {.st = st, .owner = &a, .who = "Mimi: ", .err = err};
 *     const flm_st_info *in;
 *     float *v;
 *     if ((rc = weights_check(&w, "norm.weight", 1, shape, &in)) < 0 ||
 *         (rc = weights_copy_f32(&w, in, 1, shape, &v)) < 0)
 *         ...;  // "ckpt.safetensors: tensor 'norm.weight': shape [8] in file, expected [7]"
 *     weights_src_done(&w);
 *
 * A model, or a run state, owns its buffers through one alloc_list: the destroy path frees them
 * all with one call, whatever part of the create made them. */
#ifndef FLM_WEIGHTS_H
#define FLM_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"
#include "flm_safetensors.h"

/* ---- the allocation list ---- */

enum {
    ALLOC_HUGE = 1, /* flm_malloc_huge: weights and caches that compute streams through */
    ALLOC_ZERO = 2, /* zero-filled, so every page is touched now (run states) */
};

typedef struct alloc_list {
    void **ptrs; /* [n] */
    size_t n, cap;
    size_t size; /* bytes handed out */
    int flags;   /* ALLOC_* */
} alloc_list;

/* An empty list whose buffers are made as flags (ALLOC_*) says; a zeroed alloc_list is an empty
 * list of plain flm_malloc buffers. */
void alloc_list_init(alloc_list *a, int flags);
/* A new buffer of bytes (at least 1) that the list owns; NULL when out of memory. */
void *alloc_list_alloc(alloc_list *a, size_t bytes);
/* Frees every buffer and the list itself; the list is empty afterwards. */
void alloc_list_free(alloc_list *a);

/* ---- loading tensors by name ---- */

typedef struct weights_src {
    const flm_safetensors *st;
    alloc_list *owner; /* the copies' owner */
    const char *who;   /* prefix of the out-of-memory messages ("Mimi: " or "") */
    flm_error *err;
    float *tmp; /* [tmp_n]: float32 staging, grown to the largest staged tensor */
    size_t tmp_n;
} weights_src;

/* The tensor name, checked to have the given shape and only finite values: FLM_ENOTFOUND or
 * FLM_EMISMATCH naming the file, the tensor and both shapes, FLM_ECORRUPT naming the first bad
 * element (flm_safetensors_check, flm_safetensors_check_finite). */
int weights_check(weights_src *w, const char *name, int n_dim, const int64_t *shape,
                  const flm_st_info **in);
/* The checked tensor in (any float dtype) as float32 into dst (numel floats); the copy made, its
 * mapped pages are released (they leave our RSS). */
int weights_read_f32(weights_src *w, const flm_st_info *in, int n_dim, const int64_t *shape,
                     float *dst);
/* A float32 copy of the checked tensor in (any float dtype), owned by w->owner; its mapped pages
 * are released. */
int weights_copy_f32(weights_src *w, const flm_st_info *in, int n_dim, const int64_t *shape,
                     float **out);
/* The checked tensor in as float32 in w's staging buffer (valid until the next call), for a
 * loader that stores it in another layout (packed, quantized); its mapped pages are released. */
int weights_stage_f32(weights_src *w, const flm_st_info *in, int n_dim, const int64_t *shape,
                      float **out);
/* Frees the staging buffer. */
void weights_src_done(weights_src *w);

#endif
