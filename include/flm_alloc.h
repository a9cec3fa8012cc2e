/* flm_alloc.h - the one allocation wrapper of the project.
 *
 *     float *x = flm_malloc(n * sizeof *x);   // NULL on failure (or injected failure)
 *     ...
 *     flm_free(x);
 *
 * Every library allocation goes through these so that tests can make the k-th allocation fail
 * (flm_alloc_fail_after) and check that each failure path returns FLM_ENOMEM without leaking or
 * crashing. Not thread-safe to reconfigure while other threads allocate.
 */
#ifndef FLM_ALLOC_H
#define FLM_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"

FLM_API void *flm_malloc(size_t size);
/* For large buffers that compute streams through (model weights, KV caches): from 2 MiB up,
 * aligned to 2 MiB and marked for transparent huge pages (madvise; kernels set to THP "madvise",
 * as this machine's, grant them only on request). Reading 1 GiB then runs at 31 instead of
 * 25.5 GB/s on 2 threads here (fewer TLB misses; bench/RESULTS.md). Free with flm_free. */
FLM_API void *flm_malloc_huge(size_t size);
FLM_API void *flm_calloc(size_t n, size_t size);
FLM_API void *flm_realloc(void *p, size_t size);
FLM_API void flm_free(void *p);
FLM_API char *flm_strdup(const char *s);
/* Grows *p (holding *cap elements of elem_size) to hold at least need elements (doubling). */
FLM_API int flm_grow(void **p, size_t *cap, size_t need, size_t elem_size);

/* Failure injection for tests: the allocation after the next n succeeds fails (n < 0: never).
 * flm_alloc_count() tells how many allocations were made since the last call to fail_after. */
FLM_API void flm_alloc_fail_after(int64_t n);
FLM_API int64_t flm_alloc_count(void);

#endif
