/* safetensors reader/writer; see flm_safetensors.h for the format and the checks. */
#include "flm_safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flm_alloc.h"
#include "flm_util.h"

#define MAX_HEADER_SIZE (100u << 20)

typedef struct st_file {
    char *path;
    const uint8_t *base; /* whole file */
    size_t size;
    int mapped; /* 1: munmap at close */
} st_file;

struct flm_safetensors {
    st_file *files; /* [n_files] */
    int n_files;
    flm_st_info *infos; /* [n], sorted by name */
    int n, cap;
};

static int name_cmp(const void *a, const void *b)
{
    return strcmp(((const flm_st_info *)a)->name, ((const flm_st_info *)b)->name);
}

typedef struct range {
    uint64_t begin, end;
    int idx;
} range;

static int range_cmp(const void *a, const void *b)
{
    const range *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int get_u64(json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* Parses the header of files[fi] and appends its tensors. */
static int parse_file(flm_safetensors *st, int fi, flm_error *err)
{
    st_file *f = &st->files[fi];
    const char *fn = f->path;
    json_t *root = NULL;
    range *ranges = NULL;
    int first = st->n, rc = FLM_EFORMAT;
    if (f->size < 8)
        return flm_error_set(err, FLM_EFORMAT, "%s: %zu bytes, too short for a safetensors file",
                             fn, f->size);
    uint64_t hlen = flm_get_u64(f->base);
    if (hlen > f->size - 8 || hlen > MAX_HEADER_SIZE)
        return flm_error_set(err, FLM_EFORMAT,
                             "%s: header length %llu exceeds the file (%zu bytes) or 100 MB", fn,
                             (unsigned long long)hlen, f->size);
    const uint8_t *data = f->base + 8 + hlen;
    uint64_t data_size = f->size - 8 - hlen;
    json_error_t jerr;
    root = json_loadb((const char *)f->base + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return flm_error_set(err, FLM_EFORMAT, "%s: header JSON: %s (line %d)", fn, jerr.text,
                             jerr.line);
    if (!json_is_object(root)) {
        flm_error_set(err, FLM_EFORMAT, "%s: header is not a JSON object", fn);
        goto fail;
    }
    size_t n_new = json_object_size(root);
    if (st->n + (int64_t)n_new > INT32_MAX / 2) {
        flm_error_set(err, FLM_EFORMAT, "%s: too many tensors", fn);
        goto fail;
    }
    if (st->n + (int)n_new > st->cap) {
        size_t cap = (size_t)st->cap;
        if (flm_grow((void **)&st->infos, &cap, (size_t)st->n + n_new, sizeof *st->infos) < 0) {
            rc = flm_error_set(err, FLM_ENOMEM, "%s: out of memory", fn);
            goto fail;
        }
        st->cap = (int)cap;
    }
    ranges = flm_malloc((n_new ? n_new : 1) * sizeof *ranges);
    if (!ranges) {
        rc = flm_error_set(err, FLM_ENOMEM, "%s: out of memory", fn);
        goto fail;
    }
    int n_ranges = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        if (!strcmp(key, "__metadata__")) {
            const char *mk;
            json_t *mv;
            if (!json_is_object(val)) {
                flm_error_set(err, FLM_EFORMAT, "%s: __metadata__ is not an object", fn);
                goto fail;
            }
            json_object_foreach(val, mk, mv) if (!json_is_string(mv))
            {
                flm_error_set(err, FLM_EFORMAT, "%s: __metadata__ value '%s' is not a string", fn,
                              mk);
                goto fail;
            }
            continue;
        }
        json_t *jd = json_object_get(val, "dtype"), *js = json_object_get(val, "shape");
        json_t *jo = json_object_get(val, "data_offsets");
        if (!json_is_object(val) || !json_is_string(jd) || !json_is_array(js) ||
            !json_is_array(jo) || json_array_size(jo) != 2) {
            flm_error_set(err, FLM_EFORMAT,
                          "%s: tensor '%s': entry needs dtype (string), shape (array) and "
                          "data_offsets ([begin, end])",
                          fn, key);
            goto fail;
        }
        flm_st_info *in = &st->infos[st->n];
        memset(in, 0, sizeof *in);
        int dt = flm_dtype_parse(json_string_value(jd));
        if (dt < 0) {
            flm_error_set(err, FLM_EFORMAT, "%s: tensor '%s': unknown dtype '%s'", fn, key,
                          json_string_value(jd));
            goto fail;
        }
        in->dtype = (flm_dtype)dt;
        if (json_array_size(js) > FLM_TENSOR_MAX_DIM) {
            flm_error_set(err, FLM_EFORMAT, "%s: tensor '%s': %zu dimensions (at most %d)", fn, key,
                          json_array_size(js), FLM_TENSOR_MAX_DIM);
            goto fail;
        }
        in->n_dim = (int)json_array_size(js);
        uint64_t numel = 1;
        int overflow = 0;
        for (int d = 0; d < in->n_dim; d++) {
            uint64_t v;
            if (get_u64(json_array_get(js, (size_t)d), &v) < 0 || v > (uint64_t)INT64_MAX) {
                flm_error_set(err, FLM_EFORMAT,
                              "%s: tensor '%s': shape[%d] is not a non-negative integer", fn, key,
                              d);
                goto fail;
            }
            in->shape[d] = (int64_t)v;
            if (v && numel > UINT64_MAX / v)
                overflow = 1;
            numel *= v;
        }
        uint64_t b, e, esz = flm_dtype_size(in->dtype);
        if (get_u64(json_array_get(jo, 0), &b) < 0 || get_u64(json_array_get(jo, 1), &e) < 0 ||
            b > e || e > data_size) {
            flm_error_set(err, FLM_EFORMAT,
                          "%s: tensor '%s': data_offsets out of bounds (data section is %llu "
                          "bytes)",
                          fn, key, (unsigned long long)data_size);
            goto fail;
        }
        char sh[160];
        flm_shape_format(sh, sizeof sh, in->n_dim, in->shape);
        if (overflow || (numel && esz > UINT64_MAX / numel)) {
            flm_error_set(err, FLM_EFORMAT,
                          "%s: tensor '%s': %s %s: its size in bytes overflows 64 bits "
                          "(data_offsets [%llu, %llu] span %llu)",
                          fn, key, flm_dtype_name(in->dtype), sh, (unsigned long long)b,
                          (unsigned long long)e, (unsigned long long)(e - b));
            goto fail;
        }
        if (numel * esz != e - b) {
            flm_error_set(err, FLM_EFORMAT,
                          "%s: tensor '%s': %s %s needs %llu bytes but data_offsets [%llu, %llu] "
                          "span %llu",
                          fn, key, flm_dtype_name(in->dtype), sh, (unsigned long long)(numel * esz),
                          (unsigned long long)b, (unsigned long long)e,
                          (unsigned long long)(e - b));
            goto fail;
        }
        in->offset = b;
        in->size = e - b;
        in->data = data + b;
        in->file = fn;
        in->name = flm_strdup(key);
        if (!in->name) {
            rc = flm_error_set(err, FLM_ENOMEM, "%s: out of memory", fn);
            goto fail;
        }
        ranges[n_ranges++] = (range){b, e, st->n};
        st->n++;
    }
    if (n_ranges > 1)
        qsort(ranges, (size_t)n_ranges, sizeof *ranges, range_cmp);
    for (int i = 1; i < n_ranges; i++)
        if (ranges[i].begin < ranges[i - 1].end) {
            flm_error_set(
                err, FLM_EFORMAT, "%s: tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap", fn,
                st->infos[ranges[i - 1].idx].name, (unsigned long long)ranges[i - 1].begin,
                (unsigned long long)ranges[i - 1].end, st->infos[ranges[i].idx].name,
                (unsigned long long)ranges[i].begin, (unsigned long long)ranges[i].end);
            goto fail;
        }
    flm_free(ranges);
    json_decref(root);
    return 0;
fail:
    for (int i = first; i < st->n; i++)
        flm_free((void *)st->infos[i].name);
    st->n = first;
    flm_free(ranges);
    json_decref(root);
    return rc;
}

static int map_file(st_file *f, const char *path, flm_error *err)
{
    struct stat sb;
    f->path = flm_strdup(path);
    if (!f->path)
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", path);
    int fd = flm_open_regular(path, 0, err);
    if (fd < 0)
        return fd;
    if (fstat(fd, &sb) < 0) {
        int e = errno;
        close(fd);
        return flm_error_set(err, FLM_EIO, "%s: %s", path, strerror(e));
    }
    f->size = (size_t)sb.st_size;
    if (f->size) {
        void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return flm_error_set(err, FLM_EIO, "%s: mmap: %s", path, strerror(e));
        }
        f->base = p;
        f->mapped = 1;
    }
    close(fd);
    return 0;
}

static int finish(flm_safetensors *st, flm_error *err)
{
    if (st->n > 1)
        qsort(st->infos, (size_t)st->n, sizeof *st->infos, name_cmp);
    for (int i = 1; i < st->n; i++)
        if (!strcmp(st->infos[i].name, st->infos[i - 1].name))
            return flm_error_set(err, FLM_EFORMAT, "tensor '%s' appears in both %s and %s",
                                 st->infos[i].name, st->infos[i - 1].file, st->infos[i].file);
    return 0;
}

static int add_file(flm_safetensors *st, const char *path, flm_error *err)
{
    st_file *nf = flm_realloc(st->files, (size_t)(st->n_files + 1) * sizeof *nf);
    if (!nf)
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", path);
    st->files = nf;
    memset(&st->files[st->n_files], 0, sizeof *nf);
    st->n_files++;
    int rc = map_file(&st->files[st->n_files - 1], path, err);
    if (rc < 0)
        return rc;
    return parse_file(st, st->n_files - 1, err);
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static int open_index(flm_safetensors *st, const char *path, flm_error *err)
{
    char *text = NULL, *dir = NULL, *shard_path = NULL;
    size_t n;
    json_t *root = NULL;
    int rc = flm_read_file(path, &text, &n, 64u << 20, err);
    if (rc < 0)
        return rc;
    json_error_t jerr;
    root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &jerr);
    json_t *wm = root ? json_object_get(root, "weight_map") : NULL;
    rc = FLM_EFORMAT;
    if (!root) {
        flm_error_set(err, FLM_EFORMAT, "%s: JSON: %s (line %d)", path, jerr.text, jerr.line);
        goto done;
    }
    if (!json_is_object(wm)) {
        flm_error_set(err, FLM_EFORMAT, "%s: no \"weight_map\" object", path);
        goto done;
    }
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path + 1) : 0;
    dir = flm_malloc(dlen + 1);
    if (!dir) {
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
        goto done;
    }
    memcpy(dir, path, dlen);
    dir[dlen] = 0;
    const char *key;
    json_t *val;
    /* open each distinct shard once, in order of first mention */
    json_object_foreach(wm, key, val)
    {
        const char *shard = json_string_value(val);
        if (!shard || !*shard || shard[0] == '/' || strstr(shard, "..")) {
            flm_error_set(err, FLM_EFORMAT, "%s: weight_map['%s'] is not a plain shard file name",
                          path, key);
            goto done;
        }
        flm_free(shard_path);
        shard_path = flm_malloc(dlen + strlen(shard) + 1);
        if (!shard_path) {
            rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
            goto done;
        }
        sprintf(shard_path, "%s%s", dir, shard);
        int seen = 0;
        for (int i = 0; i < st->n_files && !seen; i++)
            seen = !strcmp(st->files[i].path, shard_path);
        if (!seen && (rc = add_file(st, shard_path, err)) < 0) {
            flm_error_prefix(err, "%s", path);
            goto done;
        }
        rc = FLM_EFORMAT;
    }
    if ((rc = finish(st, err)) < 0)
        goto done;
    json_object_foreach(wm, key, val)
    {
        const flm_st_info *in = flm_safetensors_find(st, key);
        const char *shard = json_string_value(val);
        size_t ls = strlen(shard);
        if (!in || strlen(in->file) < ls || strcmp(in->file + strlen(in->file) - ls, shard)) {
            rc = flm_error_set(err, FLM_ENOTFOUND, "%s: tensor '%s' is not in shard %s", path, key,
                               shard);
            goto done;
        }
    }
    rc = 0;
done:
    json_decref(root);
    flm_free(text);
    flm_free(dir);
    flm_free(shard_path);
    return rc;
}

int flm_safetensors_open(flm_safetensors **out, const char *path, flm_error *err)
{
    flm_safetensors *st = flm_calloc(1, sizeof *st);
    char *alt = NULL;
    int rc;
    *out = NULL;
    if (!st)
        return flm_error_set(err, FLM_ENOMEM, "out of memory");
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        alt = flm_malloc(strlen(path) + 40);
        if (!alt) {
            rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
            goto fail;
        }
        sprintf(alt, "%s/model.safetensors.index.json", path);
        if (access(alt, F_OK) != 0)
            sprintf(alt, "%s/model.safetensors", path);
        if (access(alt, F_OK) != 0) {
            rc = flm_error_set(err, FLM_ENOTFOUND,
                               "%s: a directory without model.safetensors or "
                               "model.safetensors.index.json",
                               path);
            goto fail;
        }
        path = alt;
    }
    if (ends_with(path, ".json"))
        rc = open_index(st, path, err);
    else if ((rc = add_file(st, path, err)) == 0)
        rc = finish(st, err);
    if (rc < 0)
        goto fail;
    flm_free(alt);
    *out = st;
    return 0;
fail:
    flm_free(alt);
    flm_safetensors_close(&st);
    return rc;
}

int flm_safetensors_open_memory(flm_safetensors **out, const void *buf, size_t size,
                                const char *label, flm_error *err)
{
    flm_safetensors *st = flm_calloc(1, sizeof *st);
    int rc;
    *out = NULL;
    if (!st || !(st->files = flm_calloc(1, sizeof *st->files)) ||
        !(st->files[0].path = flm_strdup(label ? label : "<memory>"))) {
        flm_safetensors_close(&st);
        return flm_error_set(err, FLM_ENOMEM, "out of memory");
    }
    st->n_files = 1;
    st->files[0].base = buf;
    st->files[0].size = size;
    if ((rc = parse_file(st, 0, err)) < 0 || (rc = finish(st, err)) < 0) {
        flm_safetensors_close(&st);
        return rc;
    }
    *out = st;
    return 0;
}

void flm_safetensors_close(flm_safetensors **pst)
{
    flm_safetensors *st = pst ? *pst : NULL;
    if (!st)
        return;
    for (int i = 0; i < st->n; i++)
        flm_free((void *)st->infos[i].name);
    for (int i = 0; i < st->n_files; i++) {
        if (st->files[i].mapped)
            munmap((void *)st->files[i].base, st->files[i].size);
        flm_free(st->files[i].path);
    }
    flm_free(st->files);
    flm_free(st->infos);
    flm_free(st);
    *pst = NULL;
}

int flm_safetensors_count(const flm_safetensors *st)
{
    return st->n;
}

const flm_st_info *flm_safetensors_at(const flm_safetensors *st, int i)
{
    return i >= 0 && i < st->n ? &st->infos[i] : NULL;
}

const flm_st_info *flm_safetensors_find(const flm_safetensors *st, const char *name)
{
    flm_st_info key = {.name = name};
    return st->n ? bsearch(&key, st->infos, (size_t)st->n, sizeof key, name_cmp) : NULL;
}

int flm_safetensors_check(const flm_safetensors *st, const char *name, int n_dim,
                          const int64_t *shape, const flm_st_info **info, flm_error *err)
{
    char want[160], have[160];
    const flm_st_info *in = flm_safetensors_find(st, name);
    flm_shape_format(want, sizeof want, n_dim, shape);
    if (!in)
        return flm_error_set(err, FLM_ENOTFOUND, "%s: tensor '%s' not found (expected shape %s)",
                             st->n_files ? st->files[0].path : "?", name, want);
    int same = in->n_dim == n_dim;
    for (int d = 0; same && d < n_dim; d++)
        same = in->shape[d] == shape[d];
    if (!same) {
        flm_shape_format(have, sizeof have, in->n_dim, in->shape);
        return flm_error_set(err, FLM_EMISMATCH, "%s: tensor '%s': shape %s in file, expected %s",
                             in->file, name, have, want);
    }
    if (info)
        *info = in;
    return 0;
}

int flm_safetensors_read_f32(const flm_safetensors *st, const char *name, int n_dim,
                             const int64_t *shape, float *dst, flm_error *err)
{
    const flm_st_info *in;
    int rc = flm_safetensors_check(st, name, n_dim, shape, &in, err);
    if (rc < 0)
        return rc;
    size_t numel = (size_t)(in->size / flm_dtype_size(in->dtype));
    if (flm_convert_to_f32(in->dtype, in->data, dst, numel) < 0)
        return flm_error_set(err, FLM_EFORMAT,
                             "%s: tensor '%s': dtype %s, expected a float type (F32/F16/BF16)",
                             in->file, name, flm_dtype_name(in->dtype));
    return 0;
}

/* 1 where some element of p[0..n) (little-endian, of the width in the name) has all the exponent
 * bits of mask set (NaN or infinity): a branch-free OR the compiler vectorises (-O2 would not),
 * over blocks of 64 Ki elements that the threads share on a large tensor. */
#define VECTORISE __attribute__((optimize("O3", "tree-vectorize")))
VECTORISE static int block16(const uint8_t *p, size_t n, uint16_t mask)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint16_t v;
        memcpy(&v, p + 2 * i, 2);
        bad |= (v & mask) == mask;
    }
    return bad;
}

VECTORISE static int block32(const uint8_t *p, size_t n, uint32_t mask)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, p + 4 * i, 4);
        bad |= (v & mask) == mask;
    }
    return bad;
}

VECTORISE static int block64(const uint8_t *p, size_t n, uint64_t mask)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        memcpy(&v, p + 8 * i, 8);
        bad |= (v & mask) == mask;
    }
    return bad;
}

static int nonfinite(const uint8_t *p, size_t n, size_t width, uint64_t mask)
{
    enum { BLOCK = 65536 };
    int bad = 0;
#pragma omp parallel for reduction(| : bad) schedule(static) if (n > 16 * BLOCK)
    for (size_t b = 0; b < (n + BLOCK - 1) / BLOCK; b++) {
        size_t m = n - b * BLOCK < BLOCK ? n - b * BLOCK : BLOCK;
        const uint8_t *q = p + b * BLOCK * width;
        bad |= width == 2   ? block16(q, m, (uint16_t)mask)
               : width == 4 ? block32(q, m, (uint32_t)mask)
                            : block64(q, m, mask);
    }
    return bad;
}

int flm_safetensors_check_finite(const flm_st_info *in, flm_error *err)
{
    uint64_t exp_mask, frac_mask;
    size_t esz = flm_dtype_size(in->dtype);
    int bad;
    if (!esz || !in->size)
        return 0;
    size_t n = (size_t)(in->size / esz);
    const uint8_t *p = in->data;
    switch (in->dtype) {
    case FLM_DTYPE_F32:
        exp_mask = 0x7f800000u, frac_mask = 0x007fffffu, bad = nonfinite(p, n, 4, exp_mask);
        break;
    case FLM_DTYPE_F16:
        exp_mask = 0x7c00u, frac_mask = 0x03ffu, bad = nonfinite(p, n, 2, exp_mask);
        break;
    case FLM_DTYPE_BF16:
        exp_mask = 0x7f80u, frac_mask = 0x007fu, bad = nonfinite(p, n, 2, exp_mask);
        break;
    case FLM_DTYPE_F64:
        exp_mask = 0x7ff0000000000000ull, frac_mask = 0x000fffffffffffffull;
        bad = nonfinite(p, n, 8, exp_mask);
        break;
    default:
        return 0;
    }
    if (!bad)
        return 0;
    size_t at = 0;
    uint64_t v = 0;
    for (; at < n; at++) { /* the first bad element, for the message */
        v = 0;
        for (size_t k = 0; k < esz; k++)
            v |= (uint64_t)p[at * esz + k] << (8 * k);
        if ((v & exp_mask) == exp_mask)
            break;
    }
    char where[200] = "[", *w = where + 1;
    size_t rest = at;
    int64_t idx[FLM_TENSOR_MAX_DIM] = {0};
    for (int d = in->n_dim - 1; d >= 0; d--) {
        idx[d] = in->shape[d] ? (int64_t)(rest % (uint64_t)in->shape[d]) : 0;
        rest = in->shape[d] ? rest / (uint64_t)in->shape[d] : 0;
    }
    for (int d = 0; d < in->n_dim; d++)
        w += snprintf(w, sizeof where - (size_t)(w - where), "%s%lld", d ? ", " : "",
                      (long long)idx[d]);
    snprintf(w, sizeof where - (size_t)(w - where), "]");
    const char *what = v & frac_mask ? "NaN" : (v >> (8 * esz - 1)) & 1 ? "-infinity" : "infinity";
    return flm_error_set(err, FLM_ECORRUPT, "%s: tensor '%s': %s at %s (element %zu of %zu)",
                         in->file ? in->file : "?", in->name, what, where, at, n);
}

void flm_safetensors_release(const flm_safetensors *st, const flm_st_info *info)
{
    for (int i = 0; i < st->n_files; i++) {
        const st_file *f = &st->files[i];
        const uint8_t *p = info->data;
        if (!f->mapped || p < f->base || p >= f->base + f->size || !info->size)
            continue;
        /* only whole pages inside the tensor: neighbours may still be needed */
        uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
        uintptr_t lo = ((uintptr_t)p + page - 1) / page * page;
        uintptr_t hi = ((uintptr_t)p + info->size) / page * page;
        if (hi > lo)
            madvise((void *)lo, hi - lo, MADV_DONTNEED);
    }
}

/* ---------------------------------------------------------------- writing */

int flm_safetensors_write_memory(const flm_st_entry *e, int n, uint8_t **out, size_t *size,
                                 flm_error *err)
{
    json_t *root = json_object();
    char *hdr = NULL;
    uint64_t off = 0;
    int rc = FLM_ENOMEM;
    *out = NULL;
    if (!root)
        goto fail;
    for (int i = 0; i < n; i++) {
        flm_tensor t = flm_tensor_view(e[i].dtype, NULL, e[i].n_dim, e[i].shape);
        int64_t numel = flm_tensor_numel(&t);
        if (numel < 0 || !flm_dtype_size(e[i].dtype)) {
            rc = flm_error_set(err, FLM_EINVAL, "tensor '%s': bad shape or dtype", e[i].name);
            goto fail;
        }
        uint64_t bytes = (uint64_t)numel * flm_dtype_size(e[i].dtype);
        json_t *shape = json_array(), *ent = json_object();
        for (int d = 0; d < e[i].n_dim; d++)
            json_array_append_new(shape, json_integer(e[i].shape[d]));
        json_object_set_new(ent, "dtype", json_string(flm_dtype_name(e[i].dtype)));
        json_object_set_new(ent, "shape", shape);
        json_object_set_new(ent, "data_offsets",
                            json_pack("[II]", (json_int_t)off, (json_int_t)(off + bytes)));
        if (json_object_set_new(root, e[i].name, ent) < 0)
            goto fail;
        off += bytes;
    }
    hdr = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!hdr)
        goto fail;
    size_t hlen = strlen(hdr), padded = (hlen + 7) / 8 * 8;
    *size = 8 + padded + (size_t)off;
    uint8_t *buf = flm_malloc(*size);
    if (!buf)
        goto fail;
    flm_put_u64(buf, padded);
    memcpy(buf + 8, hdr, hlen);
    memset(buf + 8 + hlen, ' ', padded - hlen);
    uint8_t *p = buf + 8 + padded;
    for (int i = 0; i < n; i++) {
        flm_tensor t = flm_tensor_view(e[i].dtype, NULL, e[i].n_dim, e[i].shape);
        size_t bytes = (size_t)flm_tensor_numel(&t) * flm_dtype_size(e[i].dtype);
        if (bytes)
            memcpy(p, e[i].data, bytes);
        p += bytes;
    }
    *out = buf;
    rc = 0;
fail:
    if (rc == FLM_ENOMEM)
        flm_error_set(err, FLM_ENOMEM, "safetensors writer: out of memory");
    free(hdr);
    json_decref(root);
    return rc;
}

int flm_safetensors_write(const char *path, const flm_st_entry *e, int n, flm_error *err)
{
    uint8_t *buf;
    size_t size;
    int rc = flm_safetensors_write_memory(e, n, &buf, &size, err);
    if (rc < 0)
        return rc;
    char *tmp = flm_malloc(strlen(path) + 8);
    if (!tmp) {
        flm_free(buf);
        return flm_error_set(err, FLM_ENOMEM, "out of memory");
    }
    sprintf(tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int bad = fd < 0 || flm_write_all(fd, buf, size) < 0 || fsync(fd) < 0;
    int saved = errno;
    if (fd >= 0 && close(fd) < 0 && !bad)
        bad = 1, saved = errno;
    if (!bad && rename(tmp, path) < 0)
        bad = 1, saved = errno;
    if (bad) {
        rc = flm_error_set(err, FLM_EIO, "%s: %s", path, strerror(saved));
        unlink(tmp);
    }
    flm_free(tmp);
    flm_free(buf);
    return rc;
}
