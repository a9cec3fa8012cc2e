/* Shard write/read throughput against the zstd CLI on the same bytes, and bytes per frame.
 *
 * usage: bench_shard WORKDIR [N_SAMPLES]
 *
 * Builds N realistic packed samples (flm_synth: TTS/ASR streams with silences and <wait> runs;
 * codes uniform random like real codec output), then in one run and on the same machine:
 *   - writes them as a shard (zstd level 3, one frame per record, checksums, fsync + rename);
 *   - writes the same record bytes to raw.bin and times `zstd -3 -T1` compressing it;
 *   - reads every record back (checksums verified, decoded) vs `zstd -d -T1` to /dev/null.
 * Each timing is the best of 3. Prints one line per figure; ratios > 1 mean flmstream is faster. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flm_alloc.h"
#include "flm_shard.h"
#include "flm_synth.h"
#include "flm_util.h"

static double run_cmd(const char *cmd)
{
    double t = flm_now();
    if (system(cmd) != 0) {
        fprintf(stderr, "bench: command failed: %s\n", cmd);
        exit(1);
    }
    return flm_now() - t;
}

static double file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (double)st.st_size : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_shard WORKDIR [N_SAMPLES]\n");
        return 2;
    }
    const char *dir = argv[1];
    int n = argc > 2 ? atoi(argv[2]) : 200;
    flm_profiles p;
    flm_profiles_default(&p);
    flm_synth_params sp = flm_synth_default_params();
    flm_sample **s = calloc((size_t)n, sizeof *s);
    int64_t frames = 0;
    char raw[4096], shard[4096], zst[4096], cmd[16384];
    snprintf(raw, sizeof raw, "%s/raw.bin", dir);
    snprintf(shard, sizeof shard, "%s/bench.flms", dir);
    snprintf(zst, sizeof zst, "%s/raw.bin.zst", dir);
    FILE *f = fopen(raw, "wb");
    uint8_t *buf = NULL;
    size_t size = 0, cap = 0;
    for (int i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof id, "bench/%06d", i);
        if (flm_synth_sample(&s[i], &p, &sp, 2024, id, NULL) < 0)
            return 1;
        frames += s[i]->n_frames;
        size = 0;
        flm_record_encode(s[i], &buf, &size, &cap, NULL);
        fwrite(buf, 1, size, f);
    }
    fclose(f);
    double raw_bytes = file_size(raw);

    double best_w = 1e9, best_r = 1e9, best_zw = 1e9, best_zr = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        flm_error err = {0};
        flm_shard_params shp = flm_shard_default_params(&p);
        double t = flm_now();
        flm_shard_writer *w = NULL;
        if (flm_shard_writer_create(&w, shard, &shp, &err) < 0)
            return fprintf(stderr, "%s\n", err.msg), 1;
        for (int i = 0; i < n; i++)
            flm_shard_writer_add(w, s[i], NULL, &err);
        if (flm_shard_writer_finish(w, &err) < 0)
            return fprintf(stderr, "%s\n", err.msg), 1;
        flm_shard_writer_destroy(&w);
        double tw = flm_now() - t;
        best_w = tw < best_w ? tw : best_w;

        t = flm_now();
        flm_shard_reader *r = NULL;
        flm_shard_reader_open(&r, shard, &err);
        int64_t got = 0;
        for (uint64_t i = 0; i < flm_shard_reader_count(r); i++) {
            flm_record_view v;
            if (flm_shard_reader_view(r, i, &v, &err) < 0)
                return fprintf(stderr, "%s\n", err.msg), 1;
            got += v.n_frames;
        }
        flm_shard_reader_close(&r);
        double tr = flm_now() - t;
        best_r = tr < best_r ? tr : best_r;
        if (got != frames)
            return fprintf(stderr, "frames mismatch\n"), 1;

        snprintf(cmd, sizeof cmd, "zstd -q -f -3 -T1 '%s' -o '%s' && sync '%s'", raw, zst, zst);
        double tzw = run_cmd(cmd);
        best_zw = tzw < best_zw ? tzw : best_zw;
        snprintf(cmd, sizeof cmd, "zstd -q -d -T1 -c '%s' > /dev/null", zst);
        double tzr = run_cmd(cmd);
        best_zr = tzr < best_zr ? tzr : best_zr;
    }
    double sh = file_size(shard), zs = file_size(zst);
    printf("samples %d, frames %lld, raw record bytes %.1f MB\n", n, (long long)frames,
           raw_bytes / 1e6);
    printf("write: flmstream %.1f MB/s (%.0f frames/s) | zstd CLI -3 -T1 %.1f MB/s | ratio %.2f\n",
           raw_bytes / best_w / 1e6, frames / best_w, raw_bytes / best_zw / 1e6, best_zw / best_w);
    printf("read:  flmstream %.1f MB/s (%.0f frames/s) | zstd CLI -d -T1 %.1f MB/s | ratio %.2f\n",
           raw_bytes / best_r / 1e6, frames / best_r, raw_bytes / best_zr / 1e6, best_zr / best_r);
    printf("size:  shard %.1f MB, zstd CLI %.1f MB (shard/zstd %.3f)\n", sh / 1e6, zs / 1e6,
           sh / zs);
    printf("bytes per frame: shard %.2f vs raw 17 x int32 = 68 (%.1fx smaller); with loss "
           "classes the raw record is %.1f bytes/frame\n",
           sh / frames, 68.0 * frames / sh, raw_bytes / frames);
    for (int i = 0; i < n; i++)
        flm_sample_destroy(&s[i]);
    free(s);
    flm_free(buf);
    unlink(raw);
    unlink(zst);
    unlink(shard);
    return 0;
}
