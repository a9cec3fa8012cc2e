/* Shards: bit-exact round trips, corruption and truncation detection, crash safety of the
 * writer, allocation failures. */
#include <fcntl.h>
#include <sys/stat.h>

#include "flm_alloc.h"
#include "flm_shard.h"
#include "flm_util.h"
#include "tap.h"
#include "test_util.h"

static char dir[1024];

static void round_trip(void)
{
    flm_profiles p;
    flm_profiles_default(&p);
    flm_shard_params sp = flm_shard_default_params(&p);
    int total = 0, equal = 0, seeds = 0;
    const uint64_t n_seeds = getenv("FLM_TEST_FAST") ? 3 : 25; /* FLM_TEST_FAST: valgrind pass */
    for (uint64_t seed = 1; seed <= n_seeds; seed++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/rt-%llu.flms", dir, (unsigned long long)seed);
        int n = 40 + (int)(seed * 7 % 40);
        flm_sample **in = calloc((size_t)n, sizeof *in);
        flm_shard_writer *w = NULL;
        flm_error err = {0};
        sp.zstd_level = 1 + (int)(seed % 6);
        if (flm_shard_writer_create(&w, path, &sp, &err) < 0)
            tap_diag("%s", err.msg);
        for (int i = 0; i < n; i++) {
            in[i] = random_sample(seed, i, seed % 5 ? 300 : 9000);
            flm_shard_writer_add(w, in[i], NULL, &err);
        }
        int fin = flm_shard_writer_finish(w, &err);
        flm_shard_writer_destroy(&w);
        flm_shard_reader *r = NULL;
        int ok = fin == 0 && flm_shard_reader_open(&r, path, &err) == 0 &&
                 flm_shard_reader_count(r) == (uint64_t)n;
        /* read in a scrambled order: random access must not depend on sequence */
        for (int k = 0; ok && k < n; k++) {
            int i = (k * 7 + 3) % n;
            flm_sample *out = NULL;
            if (flm_shard_reader_read(r, (uint64_t)i, &out, &err) == 0 &&
                flm_sample_equal(in[i], out))
                equal++;
            else
                tap_diag("seed %llu sample %d: %s", (unsigned long long)seed, i, err.msg);
            total++;
            flm_sample_destroy(&out);
        }
        seeds += ok;
        if (!ok)
            tap_diag("seed %llu: %s", (unsigned long long)seed, err.msg);
        flm_shard_reader_close(&r);
        for (int i = 0; i < n; i++)
            flm_sample_destroy(&in[i]);
        free(in);
        unlink(path);
    }
    TAP_OK(total >= (n_seeds == 25 ? 1000 : 100), "round trip covers %d samples over %d seeds",
           total, (int)n_seeds);
    TAP_EQ_INT(equal, total,
               "every sample reads back bit-exact (tokens, classes, strings, meta, events)");
    TAP_EQ_INT(seeds, n_seeds, "every shard opens with the right count");
}

static flm_sample *small_sample(int i)
{
    flm_sample *s = random_sample(777, i, 3);
    return s;
}

static size_t write_small(const char *path, uint64_t *rec_start, uint64_t *rec_end)
{
    flm_profiles p;
    flm_profiles_default(&p);
    flm_shard_params sp = flm_shard_default_params(&p);
    flm_shard_writer *w = NULL;
    flm_shard_writer_create(&w, path, &sp, NULL);
    for (int i = 0; i < 3; i++) {
        flm_sample *s = small_sample(i);
        flm_record_info info;
        flm_shard_writer_add(w, s, &info, NULL);
        rec_start[i] = info.offset;
        rec_end[i] = info.offset + info.csize;
        flm_sample_destroy(&s);
    }
    flm_shard_writer_finish(w, NULL);
    flm_shard_writer_destroy(&w);
    struct stat st;
    stat(path, &st);
    return (size_t)st.st_size;
}

/* Opens and reads every record; returns 0 if all fine, else the first error. */
static int read_all(const char *path, flm_error *err)
{
    flm_shard_reader *r = NULL;
    int rc = flm_shard_reader_open(&r, path, err);
    for (uint64_t i = 0; rc == 0 && i < flm_shard_reader_count(r); i++) {
        flm_sample *s = NULL;
        rc = flm_shard_reader_read(r, i, &s, err);
        flm_sample_destroy(&s);
    }
    flm_shard_reader_close(&r);
    return rc;
}

static void corruption(void)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/small.flms", dir);
    uint64_t rs[3], re[3];
    size_t size = write_small(path, rs, re);
    flm_error err = {0};
    TAP_EQ_INT(read_all(path, &err), 0, "small shard reads cleanly");
    tap_diag("small shard: %zu bytes, records at [%llu,%llu) [%llu,%llu) [%llu,%llu)", size,
             (unsigned long long)rs[0], (unsigned long long)re[0], (unsigned long long)rs[1],
             (unsigned long long)re[1], (unsigned long long)rs[2], (unsigned long long)re[2]);
    int fd = open(path, O_RDWR);
    long undetected = 0, unnamed = 0, trials = 0;
    /* FLM_TEST_FAST (set for the valgrind pass): 3 values per byte instead of all 255 */
    int fast = getenv("FLM_TEST_FAST") != NULL;
    static const uint8_t fast_masks[3] = {0x01, 0x80, 0xFF};
    for (size_t pos = 0; pos < size; pos++) {
        uint8_t orig;
        if (pread(fd, &orig, 1, (off_t)pos) != 1)
            abort();
        int rec = -1;
        for (int i = 0; i < 3; i++)
            if (pos >= rs[i] && pos < re[i])
                rec = i;
        for (int m = 0; m < (fast ? 3 : 256); m++) {
            int v = fast ? orig ^ fast_masks[m] : m;
            if (v == orig)
                continue;
            uint8_t b = (uint8_t)v;
            if (pwrite(fd, &b, 1, (off_t)pos) != 1)
                abort();
            memset(&err, 0, sizeof err);
            trials++;
            if (read_all(path, &err) == 0) {
                if (undetected++ < 5)
                    tap_diag("undetected: byte %zu = 0x%02x", pos, v);
            } else {
                char want[32];
                snprintf(want, sizeof want, "record %d", rec);
                if (!strstr(err.msg, path) || (rec >= 0 && !strstr(err.msg, want))) {
                    if (unnamed++ < 5)
                        tap_diag("byte %zu: message does not name shard/record: %s", pos, err.msg);
                }
            }
        }
        if (pwrite(fd, &orig, 1, (off_t)pos) != 1)
            abort();
    }
    close(fd);
    TAP_OK(trials == (long)size * (fast ? 3 : 255),
           "%ld single-byte corruptions tried (every byte, %s)", trials,
           fast ? "3 values each: FLM_TEST_FAST" : "every value");
    TAP_EQ_INT(undetected, 0, "every single-byte corruption is detected");
    TAP_EQ_INT(unnamed, 0, "every error names the shard, and the record when inside one");
    TAP_EQ_INT(read_all(path, &err), 0, "restored shard reads cleanly again");

    long trunc_bad = 0;
    for (size_t len = 0; len < size; len++) {
        char tpath[1300];
        snprintf(tpath, sizeof tpath, "%s.trunc", path);
        FILE *in = fopen(path, "rb"), *out = fopen(tpath, "wb");
        char *buf = malloc(len + 1);
        if (!in || !out || !buf || fread(buf, 1, len, in) != len || fwrite(buf, 1, len, out) != len)
            abort();
        fclose(in);
        fclose(out);
        free(buf);
        memset(&err, 0, sizeof err);
        flm_shard_reader *r = NULL;
        int rc = flm_shard_reader_open(&r, tpath, &err);
        flm_shard_reader_close(&r);
        if (rc != FLM_ECORRUPT || !strstr(err.msg, tpath)) {
            if (trunc_bad++ < 3)
                tap_diag("truncated to %zu: rc %d: %s", len, rc, err.msg);
        }
        if (len == size / 2)
            TAP_CONTAINS(err.msg, "truncated", "a truncated shard says so");
        unlink(tpath);
    }
    TAP_EQ_INT(trunc_bad, 0, "every truncation fails to open with FLM_ECORRUPT naming the file");
}

static void unfinished_writer(void)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/unfinished.flms", dir);
    flm_profiles p;
    flm_profiles_default(&p);
    flm_shard_params sp = flm_shard_default_params(&p);
    flm_shard_writer *w = NULL;
    flm_shard_writer_create(&w, path, &sp, NULL);
    flm_sample *s = random_sample(5, 0, 50);
    flm_shard_writer_add(w, s, NULL, NULL);
    struct stat st;
    TAP_OK(stat(path, &st) != 0, "nothing exists under the final name before finish");
    char cmd[1400], tmp[1400] = "";
    snprintf(cmd, sizeof cmd, "ls '%s'/unfinished.flms.tmp-* 2>/dev/null", dir);
    FILE *f = popen(cmd, "r");
    if (f && fgets(tmp, sizeof tmp, f))
        tmp[strcspn(tmp, "\n")] = 0;
    if (f)
        pclose(f);
    TAP_OK(tmp[0] != 0, "the writer works on a temporary file");
    flm_error err = {0};
    flm_shard_reader *r = NULL;
    TAP_EQ_INT(flm_shard_reader_open(&r, tmp, &err), FLM_ECORRUPT,
               "an unfinished (killed) shard never opens as valid");
    TAP_CONTAINS(err.msg, "did not finish", "and says why");
    flm_shard_writer_destroy(&w);
    TAP_OK(stat(tmp, &st) != 0, "destroy without finish removes the temporary file");
    flm_sample_destroy(&s);

    snprintf(path, sizeof path, "%s/no-such-dir/x.flms", dir);
    TAP_EQ_INT(flm_shard_writer_create(&w, path, &sp, &err), FLM_EIO, "unwritable path");
    TAP_CONTAINS(err.msg, "no-such-dir", "error names the path");
    sp.zstd_level = 99;
    snprintf(path, sizeof path, "%s/lvl.flms", dir);
    TAP_EQ_INT(flm_shard_writer_create(&w, path, &sp, &err), FLM_EINVAL, "bad zstd level");
    TAP_EQ_INT(flm_shard_reader_open(&r, "/nonexistent.flms", &err), FLM_ENOTFOUND,
               "missing shard");
}

static void alloc_failures(void)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/alloc.flms", dir);
    flm_profiles p;
    flm_profiles_default(&p);
    flm_shard_params sp = flm_shard_default_params(&p);
    flm_sample *s = random_sample(9, 1, 40);
    int bad = 0, successes = 0;
    for (int k = 0; k < 200; k++) {
        unlink(path);
        flm_error err = {0};
        flm_alloc_fail_after(k);
        flm_shard_writer *w = NULL;
        flm_shard_reader *r = NULL;
        flm_sample *out = NULL;
        int rc = flm_shard_writer_create(&w, path, &sp, &err);
        if (rc == 0)
            rc = flm_shard_writer_add(w, s, NULL, &err);
        if (rc == 0)
            rc = flm_shard_writer_add(w, s, NULL, &err);
        if (rc == 0)
            rc = flm_shard_writer_finish(w, &err);
        flm_shard_writer_destroy(&w);
        if (rc == 0)
            rc = flm_shard_reader_open(&r, path, &err);
        if (rc == 0)
            rc = flm_shard_reader_read(r, 1, &out, &err);
        flm_alloc_fail_after(-1);
        if (rc == 0)
            successes++;
        else if (rc != FLM_ENOMEM)
            bad++;
        if (rc == 0 && !flm_sample_equal(s, out))
            bad++;
        flm_sample_destroy(&out);
        flm_shard_reader_close(&r);
    }
    TAP_EQ_INT(bad, 0, "every injected allocation failure gives FLM_ENOMEM (or success)");
    TAP_OK(successes > 0, "and once past all allocation sites, the round trip succeeds");
    flm_sample_destroy(&s);
}

int main(void)
{
    temp_dir(dir, sizeof dir, "test_shard");
    round_trip();
    unfinished_writer();
    alloc_failures();
    corruption();
    return tap_done();
}
