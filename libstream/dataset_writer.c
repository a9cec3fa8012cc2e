/* The write side of a dataset: shards named, filled by a writer thread, registered with the
 * inputs they complete. See flm_dataset_writer.h. */
#include "flm_dataset_writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "flm_alloc.h"
#include "flm_util.h"

struct flm_dataset_writer {
    char *dir;
    flm_index *idx;
    int64_t run, next;
    flm_shard_params params;
    /* the open shard */
    flm_shard_writer *w;
    char rel[64], path[4096];
    flm_sample **samples;
    flm_record_info *infos;
    size_t n_samples, cap_samples, cap_infos;
    char **done, **done_paths; /* inputs it completes, and their files (owned) */
    size_t n_done, cap_done, cap_done_paths;
    /* the writer thread appends samples [n_written, n_samples) of the open shard; the arrays
     * change only under mu */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work, idle;
    size_t n_written;
    int stop, thread_rc;
    flm_error thread_err;
    flm_dataset_writer_stats stats;
};

static void *writer_main(void *arg)
{
    flm_dataset_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->stop && (w->n_written == w->n_samples || w->thread_rc < 0))
            pthread_cond_wait(&w->work, &w->mu);
        if (w->n_written == w->n_samples || w->thread_rc < 0)
            break; /* stop, and nothing (more) to do */
        size_t k = w->n_written;
        flm_sample *s = w->samples[k];
        flm_shard_writer *sw = w->w;
        pthread_mutex_unlock(&w->mu);
        flm_record_info info;
        flm_error err = {0};
        double t0 = flm_now();
        int rc = flm_shard_writer_add(sw, s, &info, &err);
        double dt = flm_now() - t0;
        pthread_mutex_lock(&w->mu);
        w->stats.t_compress += dt;
        if (rc < 0) {
            w->thread_rc = rc;
            w->thread_err = err;
        } else {
            w->infos[k] = info;
            w->n_written = k + 1;
        }
        pthread_cond_broadcast(&w->idle);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int flm_dataset_writer_open(flm_dataset_writer **out, const char *dir, flm_index *idx, int64_t run,
                            const flm_shard_params *params, flm_error *err)
{
    *out = NULL;
    flm_dataset_writer *w = flm_calloc(1, sizeof *w);
    if (!w || !(w->dir = flm_strdup(dir))) {
        flm_free(w);
        return flm_error_set(err, FLM_ENOMEM, "out of memory");
    }
    w->idx = idx;
    w->run = run;
    w->params = *params;
    int rc = flm_index_next_shard(idx, &w->next, err);
    if (rc == 0) {
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->work, NULL);
        pthread_cond_init(&w->idle, NULL);
        int e = pthread_create(&w->thread, NULL, writer_main, w);
        if (e) {
            pthread_mutex_destroy(&w->mu);
            pthread_cond_destroy(&w->work);
            pthread_cond_destroy(&w->idle);
            rc = flm_error_set(err, FLM_ENOMEM, "cannot start the writer thread: %s", strerror(e));
        }
    }
    if (rc < 0) {
        flm_free(w->dir);
        flm_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int flm_dataset_writer_add(flm_dataset_writer *w, flm_sample *s, flm_error *err)
{
    int rc = 0;
    if (!w->w) {
        snprintf(w->rel, sizeof w->rel, "%s/%06lld%s", FLM_SHARDS_DIR, (long long)w->next,
                 FLM_SHARD_SUFFIX);
        snprintf(w->path, sizeof w->path, "%s/%s", w->dir, w->rel);
        if ((rc = flm_shard_writer_create(&w->w, w->path, &w->params, err)) < 0) {
            flm_sample_destroy(&s);
            return rc;
        }
    }
    pthread_mutex_lock(&w->mu);
    if ((rc = w->thread_rc) < 0) {
        *err = w->thread_err;
    } else if (flm_grow((void **)&w->samples, &w->cap_samples, w->n_samples + 1,
                        sizeof *w->samples) < 0 ||
               flm_grow((void **)&w->infos, &w->cap_infos, w->n_samples + 1, sizeof *w->infos) <
                   0) {
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
    } else {
        w->samples[w->n_samples++] = s;
        s = NULL;
        pthread_cond_signal(&w->work);
    }
    pthread_mutex_unlock(&w->mu);
    flm_sample_destroy(&s);
    return rc;
}

int flm_dataset_writer_complete(flm_dataset_writer *w, const char *key, const char *path,
                                flm_error *err)
{
    char *k = flm_strdup(key), *p = path ? flm_strdup(path) : NULL;
    if (!k || (path && !p) ||
        flm_grow((void **)&w->done, &w->cap_done, w->n_done + 1, sizeof *w->done) < 0 ||
        flm_grow((void **)&w->done_paths, &w->cap_done_paths, w->n_done + 1,
                 sizeof *w->done_paths) < 0) {
        flm_free(k), flm_free(p);
        return flm_error_set(err, FLM_ENOMEM, "out of memory");
    }
    w->done_paths[w->n_done] = p;
    w->done[w->n_done++] = k;
    return 0;
}

size_t flm_dataset_writer_pending(const flm_dataset_writer *w)
{
    return w->n_samples;
}

int flm_dataset_writer_has(flm_dataset_writer *w, const char *id)
{
    int found = 0;
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->n_samples && !found; i++)
        found = w->samples[i]->id && !strcmp(w->samples[i]->id, id);
    pthread_mutex_unlock(&w->mu);
    return found;
}

/* Waits until the thread has appended every sample; returns its error, if any. */
static int drain(flm_dataset_writer *w, flm_error *err)
{
    pthread_mutex_lock(&w->mu);
    while (w->thread_rc == 0 && w->n_written < w->n_samples)
        pthread_cond_wait(&w->idle, &w->mu);
    int rc = w->thread_rc;
    if (rc < 0)
        *err = w->thread_err;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* Drops the open shard's samples and completed inputs (after a flush, or at close). */
static void clear_open(flm_dataset_writer *w)
{
    flm_shard_writer_destroy(&w->w);
    for (size_t i = 0; i < w->n_samples; i++)
        flm_sample_destroy(&w->samples[i]);
    for (size_t i = 0; i < w->n_done; i++)
        flm_free(w->done[i]), flm_free(w->done_paths[i]);
    w->n_samples = w->n_done = w->n_written = 0;
}

int flm_dataset_writer_flush(flm_dataset_writer *w, flm_error *err)
{
    if (w->n_samples == 0 && w->n_done == 0)
        return 0;
    int rc = drain(w, err);
    if (rc < 0)
        return rc;
    double t0 = flm_now();
    if (w->n_samples > 0) {
        struct stat st;
        if ((rc = flm_shard_writer_finish(w->w, err)) < 0)
            return rc;
        if (stat(w->path, &st) < 0)
            return flm_error_set(err, FLM_EIO, "%s: %s", w->path, strerror(errno));
        rc = flm_index_add_shard(w->idx, w->run, w->rel, (uint64_t)st.st_size,
                                 (const flm_sample *const *)w->samples, w->infos, w->n_samples,
                                 (const char *const *)w->done, (const char *const *)w->done_paths,
                                 w->n_done, err);
        if (rc == 0) {
            w->stats.shards++;
            w->stats.samples += (int64_t)w->n_samples;
        }
        w->next++;
    } else {
        rc = flm_index_add_shard(w->idx, w->run, NULL, 0, NULL, NULL, 0,
                                 (const char *const *)w->done, (const char *const *)w->done_paths,
                                 w->n_done, err);
    }
    clear_open(w);
    w->stats.t_register += flm_now() - t0;
    return rc;
}

flm_dataset_writer_stats flm_dataset_writer_get_stats(const flm_dataset_writer *w)
{
    return w->stats;
}

void flm_dataset_writer_close(flm_dataset_writer **wp)
{
    flm_dataset_writer *w = *wp;
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_broadcast(&w->work);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->idle);
    clear_open(w);
    flm_free(w->samples), flm_free(w->infos), flm_free(w->done), flm_free(w->done_paths);
    flm_free(w->dir);
    flm_free(w);
    *wp = NULL;
}
