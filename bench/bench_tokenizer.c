/* bench_tokenizer - encode throughput, thread scaling, load time and memory of the tokenizer.
 *
 * usage: bench_tokenizer TOKENIZER_JSON CORPUS_JSONL [MIN_MB] [MAX_THREADS]
 * The corpus (one JSON string per line) is encoded repeatedly until MIN_MB (default 20) of text
 * have gone through; the best of 3 runs is reported. Threads split the lines (pthreads, one
 * flm_token_buf each). Output: "key value" lines that bench/tokenizer_bench.sh turns into the
 * table of bench/RESULTS.md. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "flm_alloc.h"
#include "flm_tokenizer.h"
#include "flm_util.h"

typedef struct job {
    const flm_tokenizer *tok;
    char **text;
    size_t *size;
    size_t first, step, n_lines, repeat;
    size_t n_ids;
    double cpu_s; /* CPU time of the thread: free of the other jobs sharing the machine */
    int failed;
} job;

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *worker(void *arg)
{
    job *j = arg;
    flm_token_buf buf = {0};
    size_t n_ids = 0; /* local: the job structs share cache lines */
    int failed = 0;
    double cpu0 = thread_cpu_s();
    for (size_t r = 0; r < j->repeat; r++)
        for (size_t i = j->first; i < j->n_lines; i += j->step) {
            if (flm_tokenizer_encode(j->tok, j->text[i], j->size[i], &buf, NULL) < 0)
                failed = 1;
            n_ids += buf.n_ids;
        }
    flm_token_buf_free(&buf);
    j->n_ids = n_ids;
    j->failed = failed;
    j->cpu_s = thread_cpu_s() - cpu0;
    return NULL;
}

static double rss_mb(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return (double)rss * (double)sysconf(_SC_PAGESIZE) / 1e6;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr,
                "usage: bench_tokenizer TOKENIZER_JSON CORPUS_JSONL [MIN_MB] [MAX_THREADS]\n");
        return 2;
    }
    double min_mb = argc > 3 ? atof(argv[3]) : 20;
    int max_threads = argc > 4 ? atoi(argv[4]) : 2;
    flm_error err = {0};
    char *data;
    size_t data_size, n = 0, cap = 0, total = 0;
    if (flm_read_file(argv[2], &data, &data_size, 1 << 30, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    char **text = NULL;
    size_t *size = NULL;
    for (char *line = data, *nl; line < data + data_size; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            nl = data + data_size;
        json_t *s = json_loadb(line, (size_t)(nl - line), JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (!json_is_string(s)) {
            json_decref(s);
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            text = realloc(text, cap * sizeof *text);
            size = realloc(size, cap * sizeof *size);
        }
        size[n] = json_string_length(s);
        text[n] = malloc(size[n] + 1);
        memcpy(text[n], json_string_value(s), size[n] + 1);
        total += size[n++];
        json_decref(s);
    }
    flm_free(data);

    double rss0 = rss_mb(), rss1 = 0;
    flm_tokenizer *tok = NULL;
    double best_load = 1e9, best_load_cpu = 1e9;
    for (int k = 0; k < 3; k++) {
        flm_tokenizer_destroy(&tok);
        double t0 = flm_now(), c0 = thread_cpu_s();
        if (flm_tokenizer_load(&tok, argv[1], NULL, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double dt = flm_now() - t0, dc = thread_cpu_s() - c0;
        if (dt < best_load)
            best_load = dt;
        if (dc < best_load_cpu)
            best_load_cpu = dc;
        if (k == 0)
            rss1 = rss_mb(); /* later loads reuse freed memory and would blur this */
    }
    printf("lines %zu\nbytes %zu\n", n, total);
    printf("load_ms %.1f\n", 1e3 * best_load);
    printf("load_cpu_ms %.1f\n", 1e3 * best_load_cpu);
    printf("rss_after_load_mb %.1f\n", rss1 - rss0);
    printf("tables_mb %.1f\n", (double)flm_tokenizer_memory_size(tok) / 1e6);

    size_t repeat = (size_t)(min_mb * 1e6 / (double)total) + 1;
    for (int threads = 1; threads <= max_threads; threads *= 2) {
        double best = 1e9, best_cpu = 1e9;
        size_t n_ids = 0;
        for (int run = 0; run < 3; run++) {
            job jobs[64];
            pthread_t tid[64];
            double t0 = flm_now();
            for (int k = 0; k < threads; k++) {
                jobs[k] = (job){tok, text, size, (size_t)k, (size_t)threads, n, repeat, 0, 0, 0};
                pthread_create(&tid[k], NULL, worker, &jobs[k]);
            }
            n_ids = 0;
            double cpu = 0;
            for (int k = 0; k < threads; k++) {
                pthread_join(tid[k], NULL);
                n_ids += jobs[k].n_ids;
                cpu += jobs[k].cpu_s;
                if (jobs[k].failed) {
                    fprintf(stderr, "encode failed\n");
                    return 1;
                }
            }
            double dt = flm_now() - t0;
            if (dt < best)
                best = dt;
            if (cpu < best_cpu)
                best_cpu = cpu;
        }
        printf("threads_%d_mb_s %.2f\n", threads, (double)total * (double)repeat / best / 1e6);
        printf("threads_%d_ids %zu\n", threads, n_ids / repeat);
        printf("threads_%d_mb_per_cpu_s %.2f\n", threads,
               (double)total * (double)repeat / best_cpu / 1e6);
    }
    flm_tokenizer_destroy(&tok);
    for (size_t i = 0; i < n; i++)
        free(text[i]);
    free(text);
    free(size);
    return 0;
}
