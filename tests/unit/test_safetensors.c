/* safetensors reader: round trip, every rejected corruption with its message, non-finite weights,
 * inputs that are not regular files, sharded index, allocation failures. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flm_alloc.h"
#include "flm_safetensors.h"
#include "flm_util.h"
#include "tap.h"

static char dir[] = "/tmp/flm_st_XXXXXX";

/* A file image from a literal header and n_data zero-filled data bytes. */
static uint8_t *image(const char *hdr, size_t n_data, size_t *size)
{
    size_t h = strlen(hdr);
    uint8_t *b = flm_calloc(1, 8 + h + n_data + 1);
    flm_put_u64(b, h);
    memcpy(b + 8, hdr, h);
    *size = 8 + h + n_data;
    return b;
}

static void expect_bad(const char *hdr, size_t n_data, int code, const char *needle,
                       const char *what)
{
    size_t n;
    uint8_t *b = image(hdr, n_data, &n);
    flm_safetensors *st = NULL;
    flm_error err = {0};
    int rc = flm_safetensors_open_memory(&st, b, n, "bad.safetensors", &err);
    TAP_EQ_INT(rc, code, what);
    TAP_CONTAINS(err.msg, needle, what);
    TAP_OK(st == NULL, "%s: no handle", what);
    flm_free(b);
}

static void test_round_trip(void)
{
    float a[6] = {1, -2, 3.5f, 0.25f, -0.125f, 100};
    uint16_t bf[3] = {0x3f80, 0xc000, 0x4040}; /* 1, -2, 3 */
    uint16_t h[2] = {0x3c00, 0xbc00};          /* 1, -1 */
    int32_t ints[2] = {7, -7};
    flm_st_entry e[] = {
        {"b.weight", FLM_DTYPE_F32, 2, {2, 3}, a},   {"a.bf", FLM_DTYPE_BF16, 1, {3}, bf},
        {"c.half", FLM_DTYPE_F16, 2, {1, 2}, h},     {"d.ints", FLM_DTYPE_I32, 1, {2}, ints},
        {"e.empty", FLM_DTYPE_F32, 2, {0, 4}, NULL},
    };
    char path[64];
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    flm_error err = {0};
    TAP_EQ_INT(flm_safetensors_write(path, e, 5, &err), 0, "write");
    flm_safetensors *st = NULL;
    TAP_EQ_INT(flm_safetensors_open(&st, path, &err), 0, "open written file");
    if (!st)
        return;
    TAP_EQ_INT(flm_safetensors_count(st), 5, "5 tensors");
    TAP_EQ_STR(flm_safetensors_at(st, 0)->name, "a.bf", "sorted by name");
    float got[6];
    TAP_EQ_INT(flm_safetensors_read_f32(st, "b.weight", 2, (int64_t[]){2, 3}, got, &err), 0,
               "read f32");
    TAP_OK(!memcmp(got, a, sizeof a), "f32 values");
    TAP_EQ_INT(flm_safetensors_read_f32(st, "a.bf", 1, (int64_t[]){3}, got, &err), 0, "read bf16");
    TAP_OK(got[0] == 1 && got[1] == -2 && got[2] == 3, "bf16 upcast");
    TAP_EQ_INT(flm_safetensors_read_f32(st, "c.half", 2, (int64_t[]){1, 2}, got, &err), 0,
               "read f16");
    TAP_OK(got[0] == 1 && got[1] == -1, "f16 upcast");
    TAP_EQ_INT(flm_safetensors_read_f32(st, "b.weight", 2, (int64_t[]){3, 2}, got, &err),
               FLM_EMISMATCH, "wrong shape");
    TAP_CONTAINS(err.msg, "tensor 'b.weight': shape [2, 3] in file, expected [3, 2]",
                 "message names tensor and both shapes");
    TAP_EQ_INT(flm_safetensors_read_f32(st, "b.weight", 1, (int64_t[]){6}, got, &err),
               FLM_EMISMATCH, "wrong rank");
    TAP_EQ_INT(flm_safetensors_read_f32(st, "nope", 1, (int64_t[]){6}, got, &err), FLM_ENOTFOUND,
               "missing tensor");
    TAP_CONTAINS(err.msg, "tensor 'nope' not found (expected shape [6])", "missing message");
    TAP_EQ_INT(flm_safetensors_read_f32(st, "d.ints", 1, (int64_t[]){2}, got, &err), FLM_EFORMAT,
               "int tensor refused as float");
    TAP_CONTAINS(err.msg, "dtype I32", "dtype message");
    flm_safetensors_release(st, flm_safetensors_find(st, "b.weight"));
    memset(got, 0, sizeof got);
    flm_safetensors_read_f32(st, "b.weight", 2, (int64_t[]){2, 3}, got, &err);
    TAP_OK(!memcmp(got, a, sizeof a), "released tensor still reads back");
    const flm_st_info *in = flm_safetensors_find(st, "e.empty");
    TAP_OK(in && in->size == 0 && in->shape[0] == 0, "empty tensor");
    flm_safetensors_close(&st);
    TAP_OK(st == NULL, "close sets NULL");
    flm_safetensors_close(&st);

    /* truncated on disk */
    char *buf;
    size_t n;
    flm_read_file(path, &buf, &n, 1 << 20, &err);
    FILE *f = fopen(path, "wb");
    fwrite(buf, 1, n - 4, f);
    fclose(f);
    flm_free(buf);
    TAP_EQ_INT(flm_safetensors_open(&st, path, &err), FLM_EFORMAT, "truncated file");
    TAP_CONTAINS(err.msg, "out of bounds", "truncated: offsets out of bounds");
    TAP_CONTAINS(err.msg, "rt.safetensors", "truncated: names the file");
    snprintf(path, sizeof path, "%s/none.safetensors", dir);
    TAP_EQ_INT(flm_safetensors_open(&st, path, &err), FLM_ENOTFOUND, "no such file");
}

static void test_bad(void)
{
    size_t n;
    uint8_t *b = image("{}", 0, &n);
    flm_safetensors *st = NULL;
    flm_error err = {0};
    TAP_EQ_INT(flm_safetensors_open_memory(&st, b, n, "x", &err), 0, "empty header ok");
    flm_safetensors_close(&st);
    flm_free(b);
    uint8_t tiny[5] = {0};
    TAP_EQ_INT(flm_safetensors_open_memory(&st, tiny, 5, "x", &err), FLM_EFORMAT, "5-byte file");
    uint8_t lie[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
    TAP_EQ_INT(flm_safetensors_open_memory(&st, lie, 16, "x", &err), FLM_EFORMAT,
               "header length beyond file");
    TAP_CONTAINS(err.msg, "header length 65535 exceeds", "header length message");

    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, FLM_EFORMAT,
               "header JSON", "syntax error");
    expect_bad("[1,2]", 0, FLM_EFORMAT, "not a JSON object", "array header");
    expect_bad("{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, FLM_EFORMAT,
               "unknown dtype 'F33'", "unknown dtype");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8, FLM_EFORMAT,
               "tensor 'a': data_offsets out of bounds (data section is 8 bytes)",
               "offsets past the end");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, FLM_EFORMAT,
               "out of bounds", "begin > end");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, FLM_EFORMAT,
               "tensor 'a': F32 [3] needs 12 bytes but data_offsets [0, 8] span 8",
               "dtype/shape inconsistent with offsets (wrong dtype)");
    expect_bad("{\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, FLM_EFORMAT,
               "BF16 [2] needs 4 bytes", "bf16 declared for f32 bytes");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, FLM_EFORMAT,
               "shape[0] is not a non-negative integer", "negative dim");
    expect_bad(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
        "\"data_offsets\":[0,8]}}",
        8, FLM_EFORMAT,
        "tensor 'a': F32 [4294967296, 4294967296, 4294967296]: its size in bytes overflows 64 "
        "bits (data_offsets [0, 8] span 8)",
        "numel overflow: said so");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}",
               8, FLM_EFORMAT, "F32 [4611686018427387904]: its size in bytes overflows 64 bits",
               "byte size overflow (the element count fits)");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
               4, FLM_EFORMAT, "9 dimensions", "too many dims");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
               12, FLM_EFORMAT, "tensors 'a' [0, 8] and 'b' [4, 12] overlap", "overlap");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
               16, FLM_EFORMAT, "duplicate", "duplicate name");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, FLM_EFORMAT, "data_offsets",
               "missing offsets");
    expect_bad("{\"__metadata__\":{\"k\":1}}", 0, FLM_EFORMAT, "not a string", "bad metadata");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, FLM_EFORMAT,
               "shape[0]", "fractional dim");
}

/* Non-finite weights are found on the stored bytes of every float dtype, named by tensor and
 * place; integers and extreme finite values pass. */
static void test_finite(void)
{
    /* a: F32 [2, 3], b: BF16 [4], c: F16 [2], d: F64 [1], e: I32 [2] */
    const char *hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]},"
                      "\"c\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[32,36]},"
                      "\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[40,48]},"
                      "\"e\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[48,56]}}";
    size_t n, h = strlen(hdr);
    uint8_t *b = image(hdr, 56, &n), *data = b + 8 + h;
    static const struct {
        const char *tensor;
        size_t at;        /* byte offset in the data section */
        int width;        /* bytes written */
        uint64_t bits;    /* little-endian value */
        const char *want; /* NULL: finite */
    } cases[] = {
        {"a", 4 * 5, 4, 0x7fc00000u, "tensor 'a': NaN at [1, 2] (element 5 of 6)"},
        {"a", 4 * 1, 4, 0xff800000u, "tensor 'a': -infinity at [0, 1] (element 1 of 6)"},
        {"a", 4 * 3, 4, 0x7f800000u, "tensor 'a': infinity at [1, 0]"},
        {"a", 0, 4, 0x7f7fffffu, NULL}, /* FLT_MAX */
        {"a", 0, 4, 0x00000001u, NULL}, /* the smallest subnormal */
        {"b", 24 + 2 * 2, 2, 0x7fc1u, "tensor 'b': NaN at [2]"},
        {"b", 24 + 2 * 3, 2, 0xff80u, "tensor 'b': -infinity at [3]"},
        {"b", 24, 2, 0x7f7fu, NULL}, /* the largest finite bf16 */
        {"c", 32 + 2, 2, 0x7c00u, "tensor 'c': infinity at [1]"},
        {"c", 32, 2, 0x7e00u, "tensor 'c': NaN at [0]"},
        {"c", 32, 2, 0x7bffu, NULL}, /* 65504 */
        {"d", 40, 8, 0x7ff8000000000000ull, "tensor 'd': NaN at [0]"},
        {"d", 40, 8, 0x7fefffffffffffffull, NULL}, /* DBL_MAX */
        {"e", 48, 4, 0x7fc00000u, NULL},           /* an integer with a NaN's bits */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        memset(data, 0, 56);
        for (int i = 0; i < cases[k].width; i++)
            data[cases[k].at + (size_t)i] = (uint8_t)(cases[k].bits >> (8 * i));
        flm_safetensors *st = NULL;
        flm_error err = {0};
        if (flm_safetensors_open_memory(&st, b, n, "w.safetensors", &err) < 0) {
            TAP_OK(0, "open: %s", err.msg);
            break;
        }
        int bad = 0, rc = 0;
        for (int i = 0; i < flm_safetensors_count(st) && !rc; i++) {
            rc = flm_safetensors_check_finite(flm_safetensors_at(st, i), &err);
            bad += rc < 0 && strcmp(flm_safetensors_at(st, i)->name, cases[k].tensor);
        }
        if (cases[k].want) {
            TAP_OK(rc == FLM_ECORRUPT && !bad && strstr(err.msg, cases[k].want) &&
                       !strncmp(err.msg, "w.safetensors: ", 15),
                   "%s %016llx: refused: %s", cases[k].tensor, (unsigned long long)cases[k].bits,
                   err.msg);
        } else {
            TAP_OK(rc == 0, "%s %016llx: finite, accepted", cases[k].tensor,
                   (unsigned long long)cases[k].bits);
        }
        flm_safetensors_close(&st);
    }
    flm_free(b);
    /* a large tensor (the scan runs in parallel blocks): the first bad element is named */
    enum { BIG = 3 << 20 };
    char big[160];
    snprintf(big, sizeof big,
             "{\"w\":{\"dtype\":\"F32\",\"shape\":[3,1048576],\"data_offsets\":[0,%d]}}", BIG * 4);
    b = image(big, (size_t)BIG * 4, &n);
    data = b + 8 + strlen(big);
    flm_safetensors *st = NULL;
    flm_error err = {0};
    flm_safetensors_open_memory(&st, b, n, "big", &err);
    const flm_st_info *w = st ? flm_safetensors_find(st, "w") : NULL;
    TAP_OK(w && flm_safetensors_check_finite(w, &err) == 0, "12 MB of zeros: finite");
    flm_put_u32(data + 4 * ((size_t)2 * 1048576 + 7), 0xffc00000u);
    flm_put_u32(data + 4 * ((size_t)2 * 1048576 + 9), 0x7f800000u);
    TAP_OK(w && flm_safetensors_check_finite(w, &err) == FLM_ECORRUPT &&
               strstr(err.msg, "big: tensor 'w': NaN at [2, 7] (element 2097159 of 3145728)"),
           "12 MB with a NaN near the end: the first bad element named (%s)", err.msg);
    flm_safetensors_close(&st);
    flm_free(b);
}

/* Inputs that are not regular files are refused without blocking (issue 18). */
static void test_not_regular(void)
{
    char p[128], q[160];
    flm_safetensors *st = NULL;
    flm_error err = {0};
    snprintf(p, sizeof p, "%s/fifo.safetensors", dir);
    TAP_OK(mkfifo(p, 0644) == 0, "mkfifo");
    TAP_EQ_INT(flm_safetensors_open(&st, p, &err), FLM_EINVAL, "a FIFO is refused (not blocked)");
    snprintf(q, sizeof q, "%s: not a regular file (a FIFO)", p);
    TAP_CONTAINS(err.msg, q, "a FIFO: named, 'not a regular file'");
    char *text = NULL;
    size_t n = 0;
    TAP_EQ_INT(flm_read_file(p, &text, &n, 1 << 20, &err), FLM_EINVAL, "flm_read_file: a FIFO");
    TAP_CONTAINS(err.msg, q, "flm_read_file: a FIFO named");
    TAP_EQ_INT(flm_open_regular("/dev/null", 0, &err), FLM_EINVAL, "/dev/null: a device");
    TAP_CONTAINS(err.msg, "/dev/null: not a regular file (a character device)", "device message");
    TAP_EQ_INT(flm_check_regular(dir, &err), FLM_EINVAL, "a directory");
    TAP_CONTAINS(err.msg, "not a regular file (a directory)", "directory message");
    snprintf(q, sizeof q, "%s/none", dir);
    TAP_EQ_INT(flm_open_regular(q, 0, &err), FLM_ENOTFOUND, "missing");
    TAP_CONTAINS(err.msg, "none: cannot open: No such file or directory", "missing message");
    snprintf(q, sizeof q, "%s/rt.safetensors", dir);
    int fd = flm_open_regular(q, 0, &err);
    TAP_OK(fd >= 0 && !(fcntl(fd, F_GETFL) & O_NONBLOCK) && (fcntl(fd, F_GETFD) & FD_CLOEXEC),
           "a regular file: opened, blocking again, close-on-exec");
    if (fd >= 0)
        close(fd);
    /* a directory without a checkpoint (an easy mistake: an LM's parent directory) */
    snprintf(q, sizeof q, "%s/empty", dir);
    mkdir(q, 0755);
    TAP_EQ_INT(flm_safetensors_open(&st, q, &err), FLM_ENOTFOUND,
               "a directory without a checkpoint");
    TAP_CONTAINS(err.msg,
                 "empty: a directory without model.safetensors or "
                 "model.safetensors.index.json",
                 "says so");
    unlink(p);
}

static void write_file(const char *name, const char *text)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    fputs(text, f);
    fclose(f);
}

static void test_sharded(void)
{
    float a[2] = {1, 2}, b[3] = {3, 4, 5};
    flm_st_entry e1[] = {{"x.a", FLM_DTYPE_F32, 1, {2}, a}};
    flm_st_entry e2[] = {{"y.b", FLM_DTYPE_F32, 1, {3}, b}, {"y.c", FLM_DTYPE_F32, 1, {2}, a}};
    char p[128];
    flm_error err = {0};
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", dir);
    flm_safetensors_write(p, e1, 1, &err);
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
    flm_safetensors_write(p, e2, 2, &err);
    write_file("model.safetensors.index.json", "{\"metadata\":{\"total_size\":28},\"weight_map\":{"
                                               "\"x.a\":\"model-00001-of-00002.safetensors\","
                                               "\"y.b\":\"model-00002-of-00002.safetensors\","
                                               "\"y.c\":\"model-00002-of-00002.safetensors\"}}");
    flm_safetensors *st = NULL;
    int rc = flm_safetensors_open(&st, dir, &err); /* directory: finds the index */
    TAP_EQ_INT(rc, 0, "open sharded via directory");
    if (rc == 0) {
        TAP_EQ_INT(flm_safetensors_count(st), 3, "3 tensors over 2 shards");
        float got[3];
        TAP_EQ_INT(flm_safetensors_read_f32(st, "y.b", 1, (int64_t[]){3}, got, &err), 0,
                   "read from shard 2");
        TAP_OK(got[0] == 3 && got[2] == 5, "shard 2 values");
        TAP_EQ_INT(flm_safetensors_read_f32(st, "x.a", 1, (int64_t[]){2}, got, &err), 0,
                   "read from shard 1");
        TAP_OK(got[1] == 2, "shard 1 values");
        flm_safetensors_close(&st);
    }
    write_file("bad1.index.json",
               "{\"weight_map\":{\"x.a\":\"model-00002-of-00002.safetensors\"}}");
    snprintf(p, sizeof p, "%s/bad1.index.json", dir);
    TAP_EQ_INT(flm_safetensors_open(&st, p, &err), FLM_ENOTFOUND, "index names wrong shard");
    TAP_CONTAINS(err.msg, "tensor 'x.a' is not in shard model-00002", "wrong shard message");
    write_file("bad2.index.json", "{\"weight_map\":{\"x.a\":\"missing.safetensors\"}}");
    snprintf(p, sizeof p, "%s/bad2.index.json", dir);
    TAP_EQ_INT(flm_safetensors_open(&st, p, &err), FLM_ENOTFOUND, "missing shard");
    TAP_CONTAINS(err.msg, "missing.safetensors", "missing shard named");
    write_file("bad3.index.json", "{\"weight_map\":{\"x.a\":\"../etc/passwd\"}}");
    snprintf(p, sizeof p, "%s/bad3.index.json", dir);
    TAP_EQ_INT(flm_safetensors_open(&st, p, &err), FLM_EFORMAT, "path traversal refused");
    write_file("bad4.index.json", "{\"weight_map\":{\"y.c\":\"model-00002-of-00002.safetensors\","
                                  "\"x.a\":\"dup.safetensors\"}}");
    snprintf(p, sizeof p, "%s/dup.safetensors", dir);
    flm_st_entry e3[] = {{"y.c", FLM_DTYPE_F32, 1, {2}, a}, {"x.a", FLM_DTYPE_F32, 1, {2}, a}};
    flm_safetensors_write(p, e3, 2, &err);
    snprintf(p, sizeof p, "%s/bad4.index.json", dir);
    TAP_EQ_INT(flm_safetensors_open(&st, p, &err), FLM_EFORMAT, "tensor in two shards");
    TAP_CONTAINS(err.msg, "appears in both", "duplicate across shards message");
    write_file("bad5.index.json", "{\"weights\":{}}");
    snprintf(p, sizeof p, "%s/bad5.index.json", dir);
    TAP_EQ_INT(flm_safetensors_open(&st, p, &err), FLM_EFORMAT, "index without weight_map");

    /* every allocation failing in turn: clean ENOMEM, no leak (ASan build checks leaks) */
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    int ok_all = 1, n_fail = 0;
    for (int k = 0; k < 200; k++) {
        flm_alloc_fail_after(k);
        rc = flm_safetensors_open(&st, p, &err);
        flm_alloc_fail_after(-1);
        if (rc == 0) {
            flm_safetensors_close(&st);
            break;
        }
        n_fail++;
        ok_all &= rc == FLM_ENOMEM && st == NULL;
    }
    TAP_OK(ok_all && n_fail > 3, "allocation failure at each of %d points -> FLM_ENOMEM", n_fail);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    test_round_trip();
    test_bad();
    test_finite();
    test_not_regular();
    test_sharded();
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        tap_diag("could not remove %s", dir);
    return tap_done();
}
