/* bench_audio - decode + resample to 24 kHz mono vs the ffmpeg CLI, and augmentation cost.
 *
 *     build/bench/bench_audio [minutes=5] [repeats=3]
 *
 * Generates 44.1 kHz stereo test files (wav s16, flac, mp3 128k) of the given length with the
 * ffmpeg CLI in a temporary directory, then per file and repeat, alternating the order:
 *   flm: flm_audio_decoder read loop (mono mixdown, 24 kHz float), CPU time of this process;
 *   CLI: ffmpeg -threads 1 -i F -ac 1 -ar 24000 -c:a pcm_f32le -f null -, CPU time of the child.
 * CPU time (user + sys) rather than wall time, because the machine may be shared: both sides
 * are measured in the same run and the ratio is what to compare. The best of the repeats is
 * reported. Then flm_augment_apply (noise + gain + floor + echo all forced on) on the decoded
 * audio, reported per hour of audio and as a fraction of the decode cost. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "flm_alloc.h"
#include "flm_audio.h"
#include "flm_augment.h"

extern char **environ;

static double cpu_self(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs argv, returns the child's user + sys CPU seconds (< 0 on failure). */
static double run_cpu(char *const argv[])
{
    pid_t pid;
    if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0)
        return -1;
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

static double flm_decode(const char *path, int64_t *n_out, float **keep)
{
    flm_audio_params p = flm_audio_default_params();
    flm_audio_decoder *d = NULL;
    flm_error err = {0};
    static float buf[65536];
    double t0 = cpu_self();
    if (flm_audio_decoder_open(&d, path, &p, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    int64_t n = 0;
    for (;;) {
        size_t got = 0;
        if (flm_audio_decoder_read(d, buf, 65536, &got, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            break;
        }
        if (got == 0)
            break;
        if (keep && *keep)
            memcpy(*keep + n, buf, got * sizeof *buf);
        n += (int64_t)got;
    }
    flm_audio_decoder_destroy(&d);
    *n_out = n;
    return cpu_self() - t0;
}

int main(int argc, char **argv)
{
    double minutes = argc > 1 ? atof(argv[1]) : 5.0;
    int repeats = argc > 2 ? atoi(argv[2]) : 3;
    char dir[] = "/tmp/flm-bench-audio-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    double secs = minutes * 60.0;
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "ffmpeg -nostdin -v error -y -f lavfi -i anoisesrc=r=44100:d=%g:a=0.2 -f lavfi -i "
             "sine=f=440:r=44100:d=%g -filter_complex '[0][1]amerge=inputs=2' -c:a pcm_s16le "
             "%s/b.wav && "
             "ffmpeg -nostdin -v error -y -i %s/b.wav -c:a flac %s/b.flac && "
             "ffmpeg -nostdin -v error -y -i %s/b.wav -c:a libmp3lame -b:a 128k %s/b.mp3",
             secs, secs, dir, dir, dir, dir, dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench_audio: generating the test files failed (is ffmpeg installed?)\n");
        return 1;
    }
    static const char *names[] = {"b.wav", "b.flac", "b.mp3"};
    static const char *labels[] = {"wav s16 44.1 kHz stereo", "flac 44.1 kHz stereo",
                                   "mp3 128k 44.1 kHz stereo"};
    double flm_best[3], cli_best[3];
    int64_t n_out = 0;
    printf(
        "| input (%.0f min) | flm x real-time/core | ffmpeg CLI x real-time/core | flm / CLI |\n",
        minutes);
    printf("|---|---|---|---|\n");
    for (int f = 0; f < 3; f++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, names[f]);
        char *cli[] = {"ffmpeg", "-nostdin",  "-v",  "error", "-threads", "1",
                       "-i",     path,        "-ac", "1",     "-ar",      "24000",
                       "-c:a",   "pcm_f32le", "-f",  "null",  "-",        NULL};
        flm_best[f] = cli_best[f] = 1e30;
        for (int r = 0; r < repeats; r++) {
            double a, b;
            if (r % 2 == 0) {
                a = flm_decode(path, &n_out, NULL);
                b = run_cpu(cli);
            } else {
                b = run_cpu(cli);
                a = flm_decode(path, &n_out, NULL);
            }
            if (a < 0 || b < 0) {
                fprintf(stderr, "bench_audio: a run failed on %s\n", path);
                return 1;
            }
            if (a < flm_best[f])
                flm_best[f] = a;
            if (b < cli_best[f])
                cli_best[f] = b;
        }
        printf("| %s | %.0fx | %.0fx | %.2f |\n", labels[f], secs / flm_best[f], secs / cli_best[f],
               cli_best[f] / flm_best[f]);
    }
    /* the CLI's fixed cost (process start, library loading) on a 0.1 s file */
    snprintf(cmd, sizeof cmd,
             "ffmpeg -nostdin -v error -y -f lavfi -i sine=r=44100:d=0.1 -ac 2 %s/tiny.wav", dir);
    double startup = 1e30;
    if (system(cmd) == 0) {
        char tiny[256];
        snprintf(tiny, sizeof tiny, "%s/tiny.wav", dir);
        char *cli[] = {"ffmpeg", "-nostdin",  "-v",  "error", "-threads", "1",
                       "-i",     tiny,        "-ac", "1",     "-ar",      "24000",
                       "-c:a",   "pcm_f32le", "-f",  "null",  "-",        NULL};
        for (int r = 0; r < repeats; r++) {
            double t = run_cpu(cli);
            if (t >= 0 && t < startup)
                startup = t;
        }
    }
    printf("\n(flm / CLI > 1 means flm needs less CPU; %lld output samples per file. The CLI "
           "figures include its fixed cost of %.3f CPU s per run (process start, measured on a "
           "0.1 s file); without it the CLI would reach %.0fx / %.0fx / %.0fx.)\n\n",
           (long long)n_out, startup, secs / (cli_best[0] - startup),
           secs / (cli_best[1] - startup), secs / (cli_best[2] - startup));

    /* augmentation on the decoded mp3 (24 kHz mono), everything forced on */
    float *x = flm_malloc((size_t)(n_out + 65536) * sizeof *x);
    float *work = flm_malloc((size_t)(n_out + 65536) * sizeof *work);
    char path[256];
    snprintf(path, sizeof path, "%s/b.mp3", dir);
    int64_t n = 0;
    flm_decode(path, &n, &x);
    flm_augment_noise_pool *pool = NULL;
    flm_error err = {0};
    flm_augment_noise_pool_create(&pool, &err);
    for (int k = 0; k < 8; k++) /* eight 10 s clips cut from the audio itself */
        flm_augment_noise_pool_add(pool, x + (int64_t)k * 240000 % (n - 240000), 240000, &err);
    flm_augment_params p = flm_augment_default_params();
    p.p_gain = p.p_noise = p.p_echo = 1.0;
    p.noise_segment_max_s = 5.0;
    flm_augment_result res = {0};
    double best = 1e30;
    flm_augment_span utts[100];
    for (int u = 0; u < 100; u++) /* 100 utterances covering 60 % of the audio */
        utts[u] = (flm_augment_span){n / 100 * u, n / 100 * u + n / 100 * 6 / 10};
    for (int r = 0; r < repeats; r++) {
        memcpy(work, x, (size_t)n * sizeof *x);
        double t0 = cpu_self();
        flm_augment_apply(&p, (uint64_t)r, "bench", work, n, utts, 100, x, n, pool, &res, &err);
        double t = cpu_self() - t0;
        if (t < best)
            best = t;
    }
    double hours = (double)n / 24000.0 / 3600.0;
    printf("| augmentation | CPU s per audio hour | fraction of decode (wav / flac / mp3) |\n"
           "|---|---|---|\n");
    printf("| all applied (p = 1: noise + gain + floor + echo), %d noise segments, 100 utterances "
           "| %.3f s | %.2f %% / %.2f %% / %.2f %% |\n",
           res.n_segments, best / hours, 100.0 * best / flm_best[0], 100.0 * best / flm_best[1],
           100.0 * best / flm_best[2]);
    /* the paper's probabilities: mean over 20 seeds */
    p = flm_augment_default_params();
    p.noise_segment_max_s = 5.0;
    double total = 0;
    for (int r = 0; r < 20; r++) {
        memcpy(work, x, (size_t)n * sizeof *x);
        double t0 = cpu_self();
        flm_augment_apply(&p, (uint64_t)r, "bench", work, n, utts, 100, x, n, pool, &res, &err);
        total += cpu_self() - t0;
    }
    best = total / 20;
    printf("| paper's probabilities (mean of 20 seeds) | %.3f s | %.2f %% / %.2f %% / %.2f %% |\n",
           best / hours, 100.0 * best / flm_best[0], 100.0 * best / flm_best[1],
           100.0 * best / flm_best[2]);
    flm_augment_result_clear(&res);
    flm_augment_noise_pool_destroy(&pool);
    flm_free(x);
    flm_free(work);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) != 0;
}
