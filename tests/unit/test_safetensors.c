/* safetensors reader: round trip, every rejected corruption with its message, sharded index,
 * allocation failures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
               "\"data_offsets\":[0,8]}}",
               8, FLM_EFORMAT, "needs 0 bytes", "numel overflow");
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
    test_sharded();
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        tap_diag("could not remove %s", dir);
    return tap_done();
}
