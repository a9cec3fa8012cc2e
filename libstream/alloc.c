#include "flm_alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static _Atomic int64_t fail_after = -1; /* allocations left before an injected failure */
static _Atomic int64_t n_allocs;

static int injected_failure(void)
{
    atomic_fetch_add(&n_allocs, 1);
    if (atomic_load(&fail_after) < 0)
        return 0;
    return atomic_fetch_sub(&fail_after, 1) == 0;
}

void flm_alloc_fail_after(int64_t n)
{
    atomic_store(&fail_after, n);
    atomic_store(&n_allocs, 0);
}

int64_t flm_alloc_count(void)
{
    return atomic_load(&n_allocs);
}

void *flm_malloc(size_t size)
{
    if (injected_failure())
        return NULL;
    return malloc(size ? size : 1);
}

void *flm_malloc_huge(size_t size)
{
    const size_t huge = (size_t)2 << 20;
    void *p = NULL;
    if (size < huge)
        return flm_malloc(size);
    if (injected_failure() || posix_memalign(&p, huge, size) != 0)
        return NULL;
    madvise(p, size, MADV_HUGEPAGE); /* a hint: without it the memory is still good */
    return p;
}

void *flm_calloc(size_t n, size_t size)
{
    if (injected_failure())
        return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void *flm_realloc(void *p, size_t size)
{
    if (injected_failure())
        return NULL;
    return realloc(p, size ? size : 1);
}

void flm_free(void *p)
{
    free(p);
}

char *flm_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = flm_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int flm_grow(void **p, size_t *cap, size_t need, size_t elem_size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 8;
    while (n < need)
        n *= 2;
    if (n > SIZE_MAX / elem_size)
        return FLM_ENOMEM;
    void *q = flm_realloc(*p, n * elem_size);
    if (!q)
        return FLM_ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}
