/* FLM-Audio LM weights read into memory vs computed from the mapped checkpoint (DESIGN 8: on
 * these machines a compute engine decoding from mmap'd weights was erratic and up to 10x slower).
 * A bf16 checkpoint of the 1B shape (written to DIR once, seed 1; reused when present) is loaded
 * as bf16 with flm_lm_load flags 0 ("memory") and FLM_LM_LOAD_MAPPED ("mapped"), each trial in a
 * fresh child process, alternating, ROUNDS times:
 *   load s; the first greedy decode step (mapped: faults the weights in) and STEPS more
 *   (median steps/s, slowest step); teacher forcing over FRAMES frames (frames/s); peak RSS, the
 *   bytes the child made the kernel read from disk (/proc/self/io read_bytes: page cache misses)
 *   and, at the end, anonymous / file-backed resident memory.
 * Warm trials read the whole file first (page cache full); "cold" trials first evict the file
 * from the page cache (posix_fadvise DONTNEED, no root needed; the resident fraction is checked
 * with mincore and printed). usage: bench_lm_mmap DIR [ROUNDS [STEPS [FRAMES [THREADS]]]] */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "flm_alloc.h"
#include "flm_kernels.h"
#include "flm_lm.h"
#include "flm_util.h"

enum { MEMORY, MAPPED, MEMORY_COLD, MAPPED_COLD, N_MODES };
static const char *const mode_name[N_MODES] = {"memory", "mapped", "memory, cold cache",
                                               "mapped, cold cache"};

typedef struct trial {
    double load_s, first_s, step_s, worst_s, tf_fps; /* step_s: median */
    double anon_mb, file_mb, disk_mb;                /* resident at the end; read from disk */
    double maxrss_mb, resident_before;               /* from the parent */
    int ok;
} trial;

/* Fraction of the file's pages in the page cache (mincore over a fresh mapping). */
static double resident_fraction(const char *path)
{
    int fd = open(path, O_RDONLY);
    struct stat sb;
    double frac = -1;
    if (fd < 0 || fstat(fd, &sb) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE), n = ((size_t)sb.st_size + page - 1) / page;
    void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
    unsigned char *v = flm_malloc(n);
    if (p != MAP_FAILED && v && mincore(p, (size_t)sb.st_size, v) == 0) {
        size_t in = 0;
        for (size_t i = 0; i < n; i++)
            in += v[i] & 1;
        frac = (double)in / (double)n;
    }
    flm_free(v);
    if (p != MAP_FAILED)
        munmap(p, (size_t)sb.st_size);
    close(fd);
    return frac;
}

/* cold: drop the file's pages from the page cache; warm: read it all. */
static void set_cache(const char *path, int cold)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    if (cold) {
        fdatasync(fd); /* dirty pages (a checkpoint just written) would stay */
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    } else {
        static char buf[8 << 20];
        while (read(fd, buf, sizeof buf) > 0)
            ;
    }
    close(fd);
}

/* A "key: value" line of a /proc/self file, times scale. */
static double proc_value(const char *file, const char *key, double scale)
{
    char line[256];
    double v = 0;
    FILE *f = fopen(file, "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key)))
            v = atof(line + strlen(key));
    if (f)
        fclose(f);
    return v * scale;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The child's work: load, decode, teacher forcing. */
static trial run_trial(const char *dir, int flags, int steps, int frames)
{
    trial r = {0};
    flm_error err = {0};
    flm_lm *lm = NULL;
    flm_lm_gen *g = NULL;
    flm_lm_state *s = NULL;
    double t0 = flm_now();
    if (flm_lm_load(&lm, dir, FLM_W_BF16, flags, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return r;
    }
    r.load_s = flm_now() - t0;
    const flm_lm_config *c = flm_lm_get_config(lm);
    flm_lm_gen_params gp = flm_lm_gen_default_params();
    gp.use_sampling = 0;
    double *dt = flm_malloc((size_t)steps * sizeof *dt);
    int R = frames < FLM_LM_TF_ROWS ? frames : FLM_LM_TF_ROWS;
    int32_t *in = flm_calloc((size_t)R * 17, 4), *codes = flm_calloc((size_t)R * 8, 4);
    float *h = flm_malloc((size_t)R * c->hidden * 4);
    float *tl = flm_malloc((size_t)R * c->vocab_size * 4);
    float *dl = flm_malloc((size_t)R * 8 * c->aud_vocab * 4);
    if (!dt || !in || !codes || !h || !tl || !dl ||
        flm_lm_gen_create(&g, lm, steps + 1, &gp, &err) < 0 ||
        flm_lm_state_create(&s, lm, frames + 1, R, &err) < 0) {
        fprintf(stderr, "setup: %s\n", err.msg);
        goto done;
    }
    int32_t user[8] = {1, 2, 3, 4, 5, 6, 7, 8}, frame[9];
    int has;
    t0 = flm_now();
    flm_lm_gen_step(g, user, NULL, frame, &has, &err);
    r.first_s = flm_now() - t0;
    for (int i = 0; i < steps; i++) {
        t0 = flm_now();
        flm_lm_gen_step(g, user, NULL, frame, &has, &err);
        dt[i] = flm_now() - t0;
    }
    qsort(dt, (size_t)steps, sizeof *dt, cmp_double);
    r.step_s = dt[steps / 2];
    r.worst_s = dt[steps - 1];
    t0 = flm_now();
    for (int f0 = 0; f0 < frames; f0 += R) {
        int T = frames - f0 < R ? frames - f0 : R;
        flm_lm_forward(s, in, T, h, &err);
        flm_lm_text_logits(s, h, T, tl);
        flm_lm_depth_forward(s, h, codes, T, dl, &err);
    }
    r.tf_fps = frames / (flm_now() - t0);
    r.anon_mb = proc_value("/proc/self/status", "RssAnon:", 1.0 / 1024);
    r.file_mb = proc_value("/proc/self/status", "RssFile:", 1.0 / 1024);
    r.disk_mb = proc_value("/proc/self/io", "read_bytes:", 1.0 / (1 << 20));
    r.ok = 1;
done:
    flm_free(dt), flm_free(in), flm_free(codes), flm_free(h), flm_free(tl), flm_free(dl);
    flm_lm_state_destroy(&s);
    flm_lm_gen_destroy(&g);
    flm_lm_destroy(&lm);
    return r;
}

static trial trial_in_child(const char *dir, const char *file, int mode, int steps, int frames)
{
    trial r = {0};
    int fds[2];
    set_cache(file, mode == MEMORY_COLD || mode == MAPPED_COLD);
    double before = resident_fraction(file);
    if (pipe(fds) < 0)
        return r;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        r = run_trial(dir, mode == MAPPED || mode == MAPPED_COLD ? FLM_LM_LOAD_MAPPED : 0, steps,
                      frames);
        _exit(write(fds[1], &r, sizeof r) == (ssize_t)sizeof r ? 0 : 1);
    }
    close(fds[1]);
    int status;
    struct rusage ru;
    if (pid < 0 || read(fds[0], &r, sizeof r) != (ssize_t)sizeof r)
        r.ok = 0;
    close(fds[0]);
    if (pid > 0 && wait4(pid, &status, 0, &ru) == pid)
        r.maxrss_mb = ru.ru_maxrss / 1024.0;
    r.resident_before = before;
    return r;
}

static double median(double *x, int n)
{
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_lm_mmap DIR [ROUNDS [STEPS [FRAMES [THREADS]]]]\n");
        return 2;
    }
    const char *dir = argv[1];
    int rounds = argc > 2 ? atoi(argv[2]) : 4, steps = argc > 3 ? atoi(argv[3]) : 20;
    int frames = argc > 4 ? atoi(argv[4]) : 128, nt = argc > 5 ? atoi(argv[5]) : 2;
    if (rounds < 1 || steps < 1 || frames < 1 || nt < 1) {
        fprintf(stderr, "bench_lm_mmap: ROUNDS, STEPS, FRAMES, THREADS must be >= 1\n");
        return 2;
    }
    char file[4096];
    snprintf(file, sizeof file, "%s/model.safetensors", dir);
    flm_error err = {0};
    if (access(file, R_OK) != 0) {
        flm_lm_config cfg;
        flm_lm_config_preset("1b", &cfg, NULL);
        fprintf(stderr, "writing a random 1B bf16 checkpoint to %s (about 2 minutes)\n", dir);
        if (flm_lm_write_random(&cfg, 1, FLM_DTYPE_BF16, 0, dir, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
    }
    flm_kernels_init(nt);
    double load[3];
    getloadavg(load, 3);
    printf("checkpoint %s, bf16; %d threads, OpenBLAS core %s; %d rounds of %d decode steps and "
           "%d teacher-forced frames; load average %.2f %.2f %.2f\n",
           dir, nt, flm_kernels_blas_core(), rounds, steps, frames, load[0], load[1], load[2]);
    printf("| round | weights | cached before | load s | first step s | steps/s (median) | "
           "slowest step s | TF frames/s | peak RSS MB | anon / file MB at end | read from "
           "disk MB |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    setvbuf(stdout, NULL, _IOLBF, 0);
    trial *res = flm_calloc((size_t)rounds * N_MODES, sizeof *res);
    if (!res)
        return 1;
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < N_MODES; k++) {
            /* alternate the order: even rounds memory first, odd rounds mapped first */
            static const int order[2][N_MODES] = {{MEMORY, MAPPED, MAPPED_COLD, MEMORY_COLD},
                                                  {MAPPED, MEMORY, MEMORY_COLD, MAPPED_COLD}};
            int mode = order[r % 2][k];
            trial t = trial_in_child(dir, file, mode, steps, frames);
            res[r * N_MODES + mode] = t;
            if (!t.ok) {
                printf("| %d | %s | failed |\n", r, mode_name[mode]);
                continue;
            }
            printf("| %d | %s | %.0f%% | %.2f | %.2f | %.2f | %.3f | %.1f | %.0f | %.0f / %.0f | "
                   "%.0f |\n",
                   r, mode_name[mode], 100 * t.resident_before, t.load_s, t.first_s, 1.0 / t.step_s,
                   t.worst_s, t.tf_fps, t.maxrss_mb, t.anon_mb, t.file_mb, t.disk_mb);
        }
    getloadavg(load, 3);
    printf("\nload average at the end %.2f %.2f %.2f\n\n", load[0], load[1], load[2]);
    /* medians over the rounds, and the ratio mapped / memory at the same cache state */
    printf("| weights | load s | first step s | steps/s | slowest step s | TF frames/s | peak "
           "RSS MB |\n|---|---|---|---|---|---|---|\n");
    double med[N_MODES][6];
    for (int mode = 0; mode < N_MODES; mode++) {
        double x[6][64];
        int n = 0;
        for (int r = 0; r < rounds && n < 64; r++) {
            const trial *t = &res[r * N_MODES + mode];
            if (!t->ok)
                continue;
            x[0][n] = t->load_s, x[1][n] = t->first_s, x[2][n] = 1.0 / t->step_s;
            x[3][n] = t->worst_s, x[4][n] = t->tf_fps, x[5][n] = t->maxrss_mb;
            n++;
        }
        for (int j = 0; j < 6; j++)
            med[mode][j] = n ? median(x[j], n) : 0;
        printf("| %s | %.2f | %.2f | %.2f | %.3f | %.1f | %.0f |\n", mode_name[mode], med[mode][0],
               med[mode][1], med[mode][2], med[mode][3], med[mode][4], med[mode][5]);
    }
    for (int cold = 0; cold < 2; cold++) {
        const double *a = med[cold ? MAPPED_COLD : MAPPED], *b = med[cold ? MEMORY_COLD : MEMORY];
        printf("| ratio mapped / memory%s | %.3f | %.2f | %.2f | %.2f | %.2f | %.2f |\n",
               cold ? ", cold" : "", a[0] / b[0], a[1] / b[1], a[2] / b[2], a[3] / b[3],
               a[4] / b[4], a[5] / b[5]);
    }
    flm_free(res);
    return 0;
}
