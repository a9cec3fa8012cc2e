/* flm_lock.h - one writer per dataset.
 *
 *     flm_dataset_lock *lk = NULL;
 *     if (flm_dataset_lock_acquire(&lk, "out/ds", "flm pack", FLM_LOCK_EXCLUSIVE, &err) < 0)
 *         ...   // "out/ds is being written by flm pack (pid 4711, started 2026-12-07T17:50:02Z)"
 *     ... clean up leftovers, write shards, register them ...
 *     flm_dataset_lock_release(&lk);
 *
 * The lock is flock(2) on DIR/writer.lock: the kernel releases it when the holder exits, however
 * it exits, so a killed job never blocks the next one. The holder writes its description into
 * the file for the message a refused writer prints. Readers never take it. A shared lock is for
 * jobs that write disjoint parts of one dataset at once (the ranks of a split job, each holding
 * the exclusive lock of its own part directory): they exclude an exclusive writer of the whole.
 * flock on network file systems depends on their lock manager (NFSv4 supports it).
 */
#ifndef FLM_LOCK_H
#define FLM_LOCK_H

#include "flm_error.h"

#define FLM_LOCK_FILE "writer.lock"

enum { FLM_LOCK_EXCLUSIVE = 0, FLM_LOCK_SHARED = 1 };

typedef struct flm_dataset_lock flm_dataset_lock;

/* Takes the lock of directory dir (which must exist) without waiting. what names the holder in
 * the refusal message of others ("flm pack"). FLM_EBUSY when another process holds it. */
FLM_API int flm_dataset_lock_acquire(flm_dataset_lock **lock, const char *dir, const char *what,
                                     int mode, flm_error *err);
/* Releases the lock (NULL is fine) and sets *lock to NULL. */
FLM_API void flm_dataset_lock_release(flm_dataset_lock **lock);

#endif
