/* tokenizer.c - loading a HuggingFace tokenizer.json and encoding/decoding with it.
 *
 * Pipeline of encode, in the reference's order: UTF-8 check (or lossy repair), split out the
 * added tokens that match raw text (leftmost-longest), NFC each remaining gap, split out the
 * added tokens that match normalized text, cut each gap with the Qwen pre-tokenizer regex
 * (tokenizer_pretok.c), then byte-level BPE on each piece. Every piece works on raw bytes: a
 * vocabulary string such as "Ġthe" is turned into its bytes " the" once, at load.
 */
#include "flm_tokenizer.h"

#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <xxhash.h>

#include "flm_alloc.h"
#include "flm_util.h"
#include "tokenizer_internal.h"

#define MAX_TOKENIZER_FILE_SIZE ((size_t)256 << 20)
#define MAX_ID 16777215
#define NO_MERGE UINT64_MAX
#define EMPTY_KEY UINT64_MAX
#define SMALL_PIECE 128 /* pieces up to this many bytes use the quadratic scan, larger a heap */

enum { E_BPE = 1, E_ADDED = 2, E_SPECIAL = 4, E_RESERVED = 8 };

typedef struct tok_entry {
    uint32_t bytes_off; /* raw bytes of a BPE token, or an added token's content */
    uint32_t bytes_len;
    uint32_t piece_off; /* NUL-terminated string as in tokenizer.json */
    int32_t flags;      /* E_* ; 0: id not used */
} tok_entry;

typedef struct added_tok {
    uint32_t off, len; /* content in the pool */
    int32_t id;
    uint8_t lstrip, rstrip, normalized;
} added_tok;

struct flm_tokenizer {
    int32_t n_ids;
    tok_entry *entries; /* [n_ids] */
    char *pool;         /* [pool_size] bytes and strings referenced by entries and added */
    size_t pool_size, pool_cap;
    int32_t *vocab_slots; /* [vocab_mask + 1] open addressing: id or -1, keyed by raw bytes */
    size_t vocab_mask;
    uint64_t *merge_keys; /* [merge_mask + 1] (left << 32 | right), EMPTY_KEY when free */
    uint64_t *merge_vals; /* [merge_mask + 1] (rank << 32 | merged id) */
    size_t merge_mask;
    int32_t byte_id[256];
    added_tok *added; /* [n_added] longest first */
    size_t n_added;
    uint8_t first_raw[256];  /* first bytes of added tokens matched on raw text */
    uint8_t first_norm[256]; /* first bytes of added tokens matched on normalized text */
    int n_norm_added;
    int nfc;
    int ignore_merges;
    flm_tokenizer_params params;
    flm_vocab_profile vocab;
    uint8_t ascii_class[128];
};

typedef struct heap_item {
    uint32_t rank;
    uint32_t pos;
    int32_t left, right;
} heap_item;

typedef struct scratch {
    char *clean; /* lossy repair of the input */
    size_t clean_cap;
    int32_t *cps; /* code points during NFC */
    size_t cps_cap;
    char *nfc; /* normalized gap */
    size_t nfc_cap;
    int32_t *sym; /* BPE symbols of the current piece */
    uint32_t *rank;
    int32_t *prev, *next;
    size_t sym_cap;
    heap_item *heap;
    size_t heap_cap;
} scratch;

/* ---- GPT-2 byte <-> character map ---------------------------------------------------------- */

/* Bytes that are printable Latin-1 map to themselves; the other 68 map to 256, 257, ... in order.
 */
static void byte_map(int32_t byte_to_cp[256], int16_t cp_to_byte[324])
{
    int extra = 0;
    for (int i = 0; i < 324; i++)
        cp_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        byte_to_cp[b] = printable ? b : 256 + extra++;
        cp_to_byte[byte_to_cp[b]] = (int16_t)b;
    }
}

/* ---- hash tables --------------------------------------------------------------------------- */

static size_t table_size(size_t n)
{
    size_t s = 16;
    while (s < 2 * n)
        s *= 2;
    return s;
}

static inline size_t mix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k;
}

static inline uint64_t merge_get(const flm_tokenizer *t, int32_t a, int32_t b)
{
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t i = mix64(key) & t->merge_mask;
    for (;;) {
        uint64_t k = t->merge_keys[i];
        if (k == key)
            return t->merge_vals[i];
        if (k == EMPTY_KEY)
            return NO_MERGE;
        i = (i + 1) & t->merge_mask;
    }
}

static int32_t vocab_get(const flm_tokenizer *t, const void *bytes, size_t len)
{
    size_t i = (size_t)XXH3_64bits(bytes, len) & t->vocab_mask;
    for (;;) {
        int32_t id = t->vocab_slots[i];
        if (id < 0)
            return -1;
        const tok_entry *e = &t->entries[id];
        if (e->bytes_len == len && !memcmp(t->pool + e->bytes_off, bytes, len))
            return id;
        i = (i + 1) & t->vocab_mask;
    }
}

/* ---- load ---------------------------------------------------------------------------------- */

static int pool_add(flm_tokenizer *t, const void *p, size_t n, uint32_t *off)
{
    if (t->pool_size + n + 1 > UINT32_MAX)
        return FLM_ERANGE;
    if (flm_grow((void **)&t->pool, &t->pool_cap, t->pool_size + n + 1, 1) < 0)
        return FLM_ENOMEM;
    *off = (uint32_t)t->pool_size;
    memcpy(t->pool + t->pool_size, p, n);
    t->pool[t->pool_size + n] = 0;
    t->pool_size += n + 1;
    return 0;
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
        return "true";
    case JSON_FALSE:
        return "false";
    default:
        return "null";
    }
}

/* Checks that key of obj is absent/null (want_null), or a string equal to want. */
static int expect_string(const json_t *obj, const char *key, const char *want, const char *where,
                         const char *name, flm_error *err)
{
    const json_t *v = json_object_get(obj, key);
    const char *s = json_string_value(v);
    if (!s || strcmp(s, want))
        return flm_error_set(err, FLM_EFORMAT, "%s: %s.%s: expected \"%s\", found %s%s%s%s", name,
                             where, key, want, s ? "\"" : "",
                             s ? s : (v ? json_type_name(v) : "nothing"), s ? "\"" : "",
                             s ? " (not supported)" : "");
    return 0;
}

static int expect_bool(const json_t *obj, const char *key, int want, const char *where,
                       const char *name, flm_error *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v) || json_is_true(v) != want)
        return flm_error_set(err, FLM_EFORMAT, "%s: %s.%s: expected %s, found %s (not supported)",
                             name, where, key, want ? "true" : "false", json_type_name(v));
    return 0;
}

static int check_pipeline(flm_tokenizer *t, const json_t *root, const char *name, flm_error *err)
{
    int rc;
    const json_t *norm = json_object_get(root, "normalizer");
    if (norm && !json_is_null(norm)) {
        if ((rc = expect_string(norm, "type", "NFC", "normalizer", name, err)) < 0)
            return rc;
        t->nfc = 1;
    }
    const json_t *pre = json_object_get(root, "pre_tokenizer");
    const json_t *list = json_object_get(pre, "pretokenizers");
    if (!pre || (rc = expect_string(pre, "type", "Sequence", "pre_tokenizer", name, err)) < 0 ||
        !json_is_array(list) || json_array_size(list) != 2)
        return flm_error_set(err, FLM_EFORMAT,
                             "%s: pre_tokenizer: expected a Sequence of [Split, ByteLevel]", name);
    const json_t *split = json_array_get(list, 0), *bl = json_array_get(list, 1);
    if ((rc = expect_string(split, "type", "Split", "pre_tokenizer[0]", name, err)) < 0 ||
        (rc = expect_string(json_object_get(split, "pattern"), "Regex", FLM_TOKENIZER_QWEN_REGEX,
                            "pre_tokenizer[0].pattern", name, err)) < 0 ||
        (rc = expect_string(split, "behavior", "Isolated", "pre_tokenizer[0]", name, err)) < 0 ||
        (rc = expect_bool(split, "invert", 0, "pre_tokenizer[0]", name, err)) < 0 ||
        (rc = expect_string(bl, "type", "ByteLevel", "pre_tokenizer[1]", name, err)) < 0 ||
        (rc = expect_bool(bl, "add_prefix_space", 0, "pre_tokenizer[1]", name, err)) < 0 ||
        (rc = expect_bool(bl, "use_regex", 0, "pre_tokenizer[1]", name, err)) < 0)
        return rc;
    const json_t *dec = json_object_get(root, "decoder");
    if (dec && !json_is_null(dec) &&
        (rc = expect_string(dec, "type", "ByteLevel", "decoder", name, err)) < 0)
        return rc;
    const json_t *post = json_object_get(root, "post_processor");
    if (post && !json_is_null(post) &&
        (rc = expect_string(post, "type", "ByteLevel", "post_processor", name, err)) < 0)
        return rc;
    const json_t *model = json_object_get(root, "model");
    if (!json_is_object(model))
        return flm_error_set(err, FLM_EFORMAT, "%s: model: expected an object", name);
    if (json_object_get(model, "type") &&
        (rc = expect_string(model, "type", "BPE", "model", name, err)) < 0)
        return rc;
    static const char *const empty_keys[] = {"continuing_subword_prefix", "end_of_word_suffix",
                                             "unk_token", "dropout"};
    for (size_t i = 0; i < sizeof empty_keys / sizeof empty_keys[0]; i++) {
        const json_t *v = json_object_get(model, empty_keys[i]);
        if (v && !json_is_null(v) && !(json_is_string(v) && !*json_string_value(v)))
            return flm_error_set(err, FLM_EFORMAT,
                                 "%s: model.%s: expected null or \"\" (not supported)", name,
                                 empty_keys[i]);
    }
    if ((rc = expect_bool(model, "byte_fallback", 0, "model", name, err)) < 0)
        return rc;
    t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    return 0;
}

/* Converts a byte-level string ("Ġthe") to raw bytes (" the") in out[0..*n); -1 if a character
 * is outside the 256-character alphabet. */
static int unmap_bytes(const char *s, const int16_t cp_to_byte[324], uint8_t *out, size_t *n)
{
    size_t len = strlen(s), k = 0;
    utf8proc_ssize_t i = 0;
    while ((size_t)i < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t l =
            utf8proc_iterate((const uint8_t *)s + i, (utf8proc_ssize_t)len - i, &cp);
        if (l <= 0 || cp < 0 || cp >= 324 || cp_to_byte[cp] < 0)
            return -1;
        out[k++] = (uint8_t)cp_to_byte[cp];
        i += l;
    }
    *n = k;
    return 0;
}

typedef struct vocab_item {
    int32_t id;
    uint32_t bytes_off, bytes_len, piece_off;
} vocab_item;

/* Reads model.vocab ({"token": id, ...}) at s->p into items (pool strings added). */
static int scan_vocab(flm_tokenizer *t, flm_jscan *s, const int16_t cp_to_byte[324],
                      vocab_item **items, size_t *n_items, int32_t *max, char **key,
                      size_t *key_cap)
{
    size_t cap = 0, len, n;
    uint8_t bytes[1024];
    int rc;
    *max = -1;
    flm_jscan_ws(s);
    if (s->p >= s->end || *s->p != '{')
        return flm_error_set(s->err, FLM_EFORMAT,
                             "%s: byte offset %zu: model.vocab: expected an "
                             "object",
                             s->name, (size_t)(s->p - s->base));
    s->p++;
    if (flm_jscan_peek(s, '}'))
        return 0;
    do {
        int64_t id;
        if ((rc = flm_jscan_string(s, key, key_cap, &len)) < 0 ||
            (rc = flm_jscan_expect(s, ':')) < 0 || (rc = flm_jscan_int(s, &id)) < 0)
            return rc;
        if (id < 0 || id > MAX_ID)
            return flm_error_set(s->err, FLM_EFORMAT,
                                 "%s: model.vocab[\"%s\"]: id %lld is outside "
                                 "0..%d",
                                 s->name, *key, (long long)id, MAX_ID);
        if (len > sizeof bytes || unmap_bytes(*key, cp_to_byte, bytes, &n) < 0 || !n)
            return flm_error_set(s->err, FLM_EFORMAT,
                                 "%s: model.vocab[\"%s\"]: not a byte-level token (character "
                                 "outside the GPT-2 byte alphabet, or empty)",
                                 s->name, *key);
        if (flm_grow((void **)items, &cap, *n_items + 1, sizeof **items) < 0)
            return flm_error_set(s->err, FLM_ENOMEM, "%s: out of memory", s->name);
        vocab_item *it = &(*items)[(*n_items)++];
        it->id = (int32_t)id;
        it->bytes_len = (uint32_t)n;
        if ((rc = pool_add(t, bytes, n, &it->bytes_off)) < 0 ||
            (rc = pool_add(t, *key, len, &it->piece_off)) < 0)
            return flm_error_set(s->err, rc, "%s: out of memory loading the vocabulary", s->name);
        if (it->id > *max)
            *max = it->id;
    } while (flm_jscan_peek(s, ','));
    return flm_jscan_expect(s, '}');
}

static int index_vocab(flm_tokenizer *t, const vocab_item *items, size_t n_items, const char *name,
                       flm_error *err)
{
    for (size_t k = 0; k < n_items; k++) {
        tok_entry *e = &t->entries[items[k].id];
        if (e->flags)
            return flm_error_set(err, FLM_EFORMAT, "%s: model.vocab[\"%s\"]: id %d used twice",
                                 name, t->pool + items[k].piece_off, (int)items[k].id);
        e->bytes_off = items[k].bytes_off;
        e->bytes_len = items[k].bytes_len;
        e->piece_off = items[k].piece_off;
        e->flags = E_BPE;
    }
    t->vocab_mask = table_size(n_items) - 1;
    t->vocab_slots = flm_malloc((t->vocab_mask + 1) * sizeof *t->vocab_slots);
    if (!t->vocab_slots)
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", name);
    memset(t->vocab_slots, 0xff, (t->vocab_mask + 1) * sizeof *t->vocab_slots);
    for (int32_t id = 0; id < t->n_ids; id++) {
        tok_entry *e = &t->entries[id];
        if (!(e->flags & E_BPE))
            continue;
        if (vocab_get(t, t->pool + e->bytes_off, e->bytes_len) >= 0)
            return flm_error_set(err, FLM_EFORMAT,
                                 "%s: model.vocab: \"%s\" and another token have "
                                 "the same bytes",
                                 name, t->pool + e->piece_off);
        size_t i = (size_t)XXH3_64bits(t->pool + e->bytes_off, e->bytes_len) & t->vocab_mask;
        while (t->vocab_slots[i] >= 0)
            i = (i + 1) & t->vocab_mask;
        t->vocab_slots[i] = id;
    }
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        t->byte_id[b] = vocab_get(t, &c, 1);
        if (t->byte_id[b] < 0)
            return flm_error_set(err, FLM_EFORMAT,
                                 "%s: model.vocab: no token for byte 0x%02x (a "
                                 "byte-level vocabulary has all 256)",
                                 name, b);
    }
    return 0;
}

static int lookup_merge_part(const flm_tokenizer *t, const char *s, size_t len,
                             const int16_t cp_to_byte[324], int32_t *id)
{
    char tmp[1025];
    uint8_t bytes[1024];
    size_t n;
    if (len >= sizeof tmp)
        return -1;
    memcpy(tmp, s, len);
    tmp[len] = 0;
    if (unmap_bytes(tmp, cp_to_byte, bytes, &n) < 0 || !n)
        return -1;
    *id = vocab_get(t, bytes, n);
    return *id < 0 ? -1 : 0;
}

static int resolve_merge(const flm_tokenizer *t, size_t r, const char *a, size_t la, const char *b,
                         size_t lb, const int16_t cp_to_byte[324], const char *name, flm_error *err,
                         uint64_t *key, int32_t *merged)
{
    int32_t ia, ib;
    if (lookup_merge_part(t, a, la, cp_to_byte, &ia) < 0 ||
        lookup_merge_part(t, b, lb, cp_to_byte, &ib) < 0)
        return flm_error_set(err, FLM_EFORMAT,
                             "%s: model.merges[%zu]: \"%.*s\" or \"%.*s\" is "
                             "not in model.vocab",
                             name, r, (int)la, a, (int)lb, b);
    const tok_entry *ea = &t->entries[ia], *eb = &t->entries[ib];
    uint8_t cat[2048];
    if (ea->bytes_len + eb->bytes_len > sizeof cat)
        return flm_error_set(err, FLM_EFORMAT, "%s: model.merges[%zu]: token too long", name, r);
    memcpy(cat, t->pool + ea->bytes_off, ea->bytes_len);
    memcpy(cat + ea->bytes_len, t->pool + eb->bytes_off, eb->bytes_len);
    int32_t im = vocab_get(t, cat, ea->bytes_len + eb->bytes_len);
    if (im < 0)
        return flm_error_set(err, FLM_EFORMAT,
                             "%s: model.merges[%zu]: the merge of \"%.*s\" and "
                             "\"%.*s\" is not in model.vocab",
                             name, r, (int)la, a, (int)lb, b);
    *key = (uint64_t)(uint32_t)ia << 32 | (uint32_t)ib;
    *merged = im;
    return 0;
}

/* Reads model.merges (["a b", ...] or [["a", "b"], ...]) at s->p into the merge table. */
static int scan_merges(flm_tokenizer *t, flm_jscan *s, const int16_t cp_to_byte[324], char **a,
                       size_t *a_cap, char **b, size_t *b_cap)
{
    int rc;
    size_t r = 0, la, lb, cap_pairs = 0, cap_ids = 0;
    uint64_t *pairs = NULL, key = 0; /* [r] left << 32 | right, in rank order */
    int32_t *merged = NULL, m = 0;   /* [r] */
    flm_jscan_ws(s);
    if (s->p >= s->end || *s->p != '[')
        return flm_error_set(s->err, FLM_EFORMAT,
                             "%s: byte offset %zu: model.merges: expected an "
                             "array",
                             s->name, (size_t)(s->p - s->base));
    s->p++;
    if (!flm_jscan_peek(s, ']')) {
        do {
            flm_jscan_ws(s);
            if (s->p < s->end && *s->p == '"') {
                if ((rc = flm_jscan_string(s, a, a_cap, &la)) < 0)
                    goto done;
                char *sp = memchr(*a, ' ', la);
                if (!sp || memchr(sp + 1, ' ', la - (size_t)(sp - *a) - 1)) {
                    rc = flm_error_set(s->err, FLM_EFORMAT,
                                       "%s: model.merges[%zu]: \"%s\" is not "
                                       "two tokens separated by one space",
                                       s->name, r, *a);
                    goto done;
                }
                rc = resolve_merge(t, r, *a, (size_t)(sp - *a), sp + 1, la - (size_t)(sp - *a) - 1,
                                   cp_to_byte, s->name, s->err, &key, &m);
            } else if (flm_jscan_peek(s, '[')) {
                if ((rc = flm_jscan_string(s, a, a_cap, &la)) < 0 ||
                    (rc = flm_jscan_expect(s, ',')) < 0 ||
                    (rc = flm_jscan_string(s, b, b_cap, &lb)) < 0 ||
                    (rc = flm_jscan_expect(s, ']')) < 0) {
                    flm_error_prefix(s->err, "model.merges[%zu]: expected [\"a\", \"b\"]", r);
                    goto done;
                }
                rc = resolve_merge(t, r, *a, la, *b, lb, cp_to_byte, s->name, s->err, &key, &m);
            } else {
                rc = flm_error_set(s->err, FLM_EFORMAT,
                                   "%s: model.merges[%zu]: expected \"a b\" or "
                                   "[\"a\", \"b\"]",
                                   s->name, r);
            }
            if (rc < 0)
                goto done;
            if (flm_grow((void **)&merged, &cap_ids, r + 1, sizeof *merged) < 0 ||
                flm_grow((void **)&pairs, &cap_pairs, r + 1, sizeof *pairs) < 0) {
                rc = flm_error_set(s->err, FLM_ENOMEM, "%s: out of memory", s->name);
                goto done;
            }
            pairs[r] = key;
            merged[r++] = m;
            if (r > UINT32_MAX / 2) {
                rc = flm_error_set(s->err, FLM_ERANGE, "%s: model.merges: too many", s->name);
                goto done;
            }
        } while (flm_jscan_peek(s, ','));
        if ((rc = flm_jscan_expect(s, ']')) < 0)
            goto done;
    }
    /* the pair list becomes an open-addressing table: key -> rank << 32 | merged id */
    t->merge_mask = table_size(r) - 1;
    t->merge_keys = flm_malloc((t->merge_mask + 1) * sizeof *t->merge_keys);
    t->merge_vals = flm_malloc((t->merge_mask + 1) * sizeof *t->merge_vals);
    if (!t->merge_keys || !t->merge_vals) {
        rc = flm_error_set(s->err, FLM_ENOMEM, "%s: out of memory", s->name);
        goto done;
    }
    memset(t->merge_keys, 0xff, (t->merge_mask + 1) * sizeof *t->merge_keys);
    for (size_t k = 0; k < r; k++) {
        key = pairs[k];
        size_t i = mix64(key) & t->merge_mask;
        while (t->merge_keys[i] != EMPTY_KEY && t->merge_keys[i] != key)
            i = (i + 1) & t->merge_mask;
        if (t->merge_keys[i] == key)
            continue; /* a repeated pair keeps its first (lowest) rank */
        t->merge_keys[i] = key;
        t->merge_vals[i] = (uint64_t)k << 32 | (uint32_t)merged[k];
    }
done:
    flm_free(pairs);
    flm_free(merged);
    return rc;
}

static int added_cmp(const void *a, const void *b)
{
    const added_tok *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int load_added(flm_tokenizer *t, const json_t *list, const char *name, flm_error *err)
{
    size_t n = json_array_size(list);
    t->added = flm_calloc(n ? n : 1, sizeof *t->added);
    if (!t->added)
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", name);
    for (size_t i = 0; i < n; i++) {
        const json_t *a = json_array_get(list, i);
        const json_t *jid = json_object_get(a, "id");
        const char *content = json_string_value(json_object_get(a, "content"));
        json_int_t id = json_integer_value(jid);
        if (!json_is_integer(jid) || id < 0 || id >= t->n_ids || !content || !*content)
            return flm_error_set(err, FLM_EFORMAT,
                                 "%s: added_tokens[%zu]: expected an id in 0..%d "
                                 "and a non-empty content",
                                 name, i, MAX_ID);
        if (json_is_true(json_object_get(a, "single_word")))
            return flm_error_set(err, FLM_EFORMAT,
                                 "%s: added_tokens[%zu] (\"%s\"): single_word "
                                 "is not supported",
                                 name, i, content);
        size_t len = strlen(content);
        if (flm_utf8_check(content, len) != len)
            return flm_error_set(err, FLM_EFORMAT, "%s: added_tokens[%zu]: content is not UTF-8",
                                 name, i);
        tok_entry *e = &t->entries[id];
        if (e->flags & E_ADDED)
            return flm_error_set(err, FLM_EFORMAT,
                                 "%s: added_tokens[%zu] (\"%s\"): id %d used "
                                 "twice",
                                 name, i, content, (int)id);
        if ((e->flags & E_BPE) &&
            (e->bytes_len != len || memcmp(t->pool + e->bytes_off, content, len)))
            return flm_error_set(err, FLM_EFORMAT,
                                 "%s: added_tokens[%zu] (\"%s\"): id %d is the "
                                 "vocabulary token \"%s\"",
                                 name, i, content, (int)id, t->pool + e->piece_off);
        int rc;
        if ((rc = pool_add(t, content, len, &e->bytes_off)) < 0)
            return flm_error_set(err, rc, "%s: out of memory", name);
        e->piece_off = e->bytes_off;
        e->bytes_len = (uint32_t)len;
        e->flags = E_ADDED | (json_is_true(json_object_get(a, "special")) ? E_SPECIAL : 0);
        added_tok *at = &t->added[t->n_added++];
        at->off = e->bytes_off;
        at->len = (uint32_t)len;
        at->id = (int32_t)id;
        at->lstrip = json_is_true(json_object_get(a, "lstrip"));
        at->rstrip = json_is_true(json_object_get(a, "rstrip"));
        /* the reference's default for "normalized" is !special */
        const json_t *jn = json_object_get(a, "normalized");
        at->normalized = jn ? json_is_true(jn) : !(e->flags & E_SPECIAL);
    }
    return 0;
}

/* Applies the vocabulary profile: reserved ids leave the added-token matcher. */
static int apply_profile(flm_tokenizer *t, const char *name, flm_error *err)
{
    const flm_vocab_profile *v = &t->vocab;
    const struct {
        int32_t id;
        const char *label;
    } res[] = {{v->text_wait, "<wait>"}, {v->text_asr, "<asr>"}, {v->text_answer, "<answer>"}};
    for (size_t k = 0; k < 3; k++) {
        int32_t id = res[k].id;
        if (id < 0 || id >= v->text_vocab_size)
            return flm_error_set(err, FLM_EMISMATCH,
                                 "%s: vocab profile %s: %s id %d is outside "
                                 "0..%d",
                                 name, v->name, res[k].label, (int)id, (int)v->text_vocab_size - 1);
        tok_entry *e = &t->entries[id];
        if (e->flags & E_BPE)
            return flm_error_set(err, FLM_EMISMATCH,
                                 "%s: vocab profile %s reserves id %d for %s, "
                                 "but it is the BPE token \"%s\"",
                                 name, v->name, (int)id, res[k].label, t->pool + e->piece_off);
        if (!(e->flags & E_ADDED)) {
            int rc = pool_add(t, res[k].label, strlen(res[k].label), &e->bytes_off);
            if (rc < 0)
                return flm_error_set(err, rc, "%s: out of memory", name);
            e->piece_off = e->bytes_off;
            e->bytes_len = (uint32_t)strlen(res[k].label);
        }
        e->flags |= E_RESERVED | E_SPECIAL;
        for (size_t i = 0; i < t->n_added; i++)
            if (t->added[i].id == id)
                t->added[i--] = t->added[--t->n_added];
    }
    if (t->n_ids > v->text_vocab_size)
        return flm_error_set(err, FLM_EMISMATCH,
                             "%s: has ids up to %d, but vocab profile %s has "
                             "text_vocab_size %d",
                             name, (int)t->n_ids - 1, v->name, (int)v->text_vocab_size);
    return 0;
}

flm_tokenizer_params flm_tokenizer_default_params(void)
{
    flm_tokenizer_params p = {0};
    p.split_added = 1;
    return p;
}

static int32_t max_id(int32_t vocab_max, const json_t *added, const flm_vocab_profile *v)
{
    json_int_t m = vocab_max;
    for (size_t i = 0; i < json_array_size(added); i++) {
        json_int_t id = json_integer_value(json_object_get(json_array_get(added, i), "id"));
        if (id > m && id <= MAX_ID)
            m = id;
    }
    if (v) {
        int32_t r[3] = {v->text_wait, v->text_asr, v->text_answer};
        for (int k = 0; k < 3; k++)
            if (r[k] > m && r[k] <= MAX_ID)
                m = r[k];
    }
    return (int32_t)m;
}

/* Hands the value at s->p to jansson and stores it under key in obj. */
static int take_value(flm_jscan *s, json_t *obj, const char *key)
{
    flm_jscan_ws(s);
    const char *start = s->p;
    int rc = flm_jscan_skip(s);
    if (rc < 0)
        return rc;
    json_error_t jerr;
    json_t *v = json_loadb(start, (size_t)(s->p - start), JSON_DECODE_ANY, &jerr);
    if (!v)
        return flm_error_set(s->err, FLM_EFORMAT, "%s: byte offset %zu: %s: %s", s->name,
                             (size_t)(start - s->base) + (size_t)jerr.position, key, jerr.text);
    if (json_object_set_new(obj, key, v) < 0)
        return flm_error_set(s->err, FLM_ENOMEM, "%s: out of memory", s->name);
    return 0;
}

/* Walks the document: every member goes to jansson (into *root) except model.vocab and
 * model.merges, whose positions are returned for the in-place readers. */
static int scan_document(flm_jscan *s, json_t **root, const char **vocab_at, const char **merges_at,
                         char **key, size_t *key_cap)
{
    size_t len;
    int rc;
    if (!(*root = json_object()))
        return flm_error_set(s->err, FLM_ENOMEM, "%s: out of memory", s->name);
    if ((rc = flm_jscan_expect(s, '{')) < 0)
        return rc;
    if (!flm_jscan_peek(s, '}')) {
        do {
            if ((rc = flm_jscan_string(s, key, key_cap, &len)) < 0 ||
                (rc = flm_jscan_expect(s, ':')) < 0)
                return rc;
            flm_jscan_ws(s);
            if (strcmp(*key, "model") || s->p >= s->end || *s->p != '{') {
                if ((rc = take_value(s, *root, *key)) < 0)
                    return rc;
                continue;
            }
            json_t *model = json_object();
            if (!model || json_object_set_new(*root, "model", model) < 0)
                return flm_error_set(s->err, FLM_ENOMEM, "%s: out of memory", s->name);
            s->p++;
            if (flm_jscan_peek(s, '}'))
                continue;
            do {
                if ((rc = flm_jscan_string(s, key, key_cap, &len)) < 0 ||
                    (rc = flm_jscan_expect(s, ':')) < 0)
                    return rc;
                flm_jscan_ws(s);
                int is_vocab = !strcmp(*key, "vocab"), is_merges = !strcmp(*key, "merges");
                if (is_vocab || is_merges) {
                    *(is_vocab ? vocab_at : merges_at) = s->p;
                    json_object_set_new(model, *key, json_true()); /* present */
                    if ((rc = flm_jscan_skip(s)) < 0)
                        return rc;
                } else if ((rc = take_value(s, model, *key)) < 0) {
                    return rc;
                }
            } while (flm_jscan_peek(s, ','));
            if ((rc = flm_jscan_expect(s, '}')) < 0)
                return rc;
        } while (flm_jscan_peek(s, ','));
        if ((rc = flm_jscan_expect(s, '}')) < 0)
            return rc;
    }
    flm_jscan_ws(s);
    if (s->p != s->end)
        return flm_error_set(s->err, FLM_EFORMAT, "%s: byte offset %zu: data after the JSON object",
                             s->name, (size_t)(s->p - s->base));
    return 0;
}

int flm_tokenizer_load_json(flm_tokenizer **out, const char *json, size_t json_size,
                            const char *name, const flm_tokenizer_params *params, flm_error *err)
{
    int rc;
    json_t *root = NULL;
    vocab_item *items = NULL;
    size_t n_items = 0;
    char *a = NULL, *b = NULL;
    size_t a_cap = 0, b_cap = 0;
    const char *vocab_at = NULL, *merges_at = NULL;
    flm_jscan s = {json, json, json + json_size, name, err};
    *out = NULL;
    flm_tokenizer *t = flm_calloc(1, sizeof *t);
    if (!t) {
        rc = flm_error_set(err, FLM_ENOMEM, "%s: out of memory", name);
        goto fail;
    }
    t->params = params ? *params : flm_tokenizer_default_params();
    if (t->params.vocab) {
        t->vocab = *t->params.vocab;
        t->params.vocab = &t->vocab;
    }
    for (int c = 0; c < 128; c++)
        t->ascii_class[c] = (uint8_t)flm_tokenizer_class(c);
    if ((rc = scan_document(&s, &root, &vocab_at, &merges_at, &a, &a_cap)) < 0 ||
        (rc = check_pipeline(t, root, name, err)) < 0)
        goto fail;
    const json_t *added = json_object_get(root, "added_tokens");
    if (!vocab_at || !merges_at || (added && !json_is_null(added) && !json_is_array(added))) {
        rc = flm_error_set(err, FLM_EFORMAT,
                           "%s: expected model.vocab (object), model.merges "
                           "(array) and added_tokens (array)",
                           name);
        goto fail;
    }
    int16_t cp_to_byte[324];
    int32_t byte_to_cp[256], vocab_max;
    byte_map(byte_to_cp, cp_to_byte);
    s.p = vocab_at;
    if ((rc = scan_vocab(t, &s, cp_to_byte, &items, &n_items, &vocab_max, &a, &a_cap)) < 0)
        goto fail;
    t->n_ids = max_id(vocab_max, added, t->params.vocab) + 1;
    t->entries = flm_calloc((size_t)t->n_ids + 1, sizeof *t->entries);
    if (!t->entries) {
        rc = flm_error_set(err, FLM_ENOMEM, "%s: out of memory", name);
        goto fail;
    }
    s.p = merges_at;
    if ((rc = index_vocab(t, items, n_items, name, err)) < 0 ||
        (rc = scan_merges(t, &s, cp_to_byte, &a, &a_cap, &b, &b_cap)) < 0 ||
        (rc = load_added(t, added, name, err)) < 0)
        goto fail;
    if (t->params.vocab && (rc = apply_profile(t, name, err)) < 0)
        goto fail;
    qsort(t->added, t->n_added, sizeof *t->added, added_cmp);
    for (size_t i = 0; i < t->n_added; i++) {
        uint8_t first = (uint8_t)t->pool[t->added[i].off];
        if (t->added[i].normalized && t->nfc) {
            t->first_norm[first] = 1;
            t->n_norm_added++;
        } else {
            t->first_raw[first] = 1;
        }
    }
    json_decref(root);
    flm_free(items);
    flm_free(a);
    flm_free(b);
    *out = t;
    return 0;
fail:
    json_decref(root);
    flm_free(items);
    flm_free(a);
    flm_free(b);
    flm_tokenizer_destroy(&t);
    return rc;
}

int flm_tokenizer_load(flm_tokenizer **tok, const char *path, const flm_tokenizer_params *params,
                       flm_error *err)
{
    char *json;
    size_t size;
    *tok = NULL;
    int rc = flm_read_file(path, &json, &size, MAX_TOKENIZER_FILE_SIZE, err);
    if (rc < 0)
        return rc;
    rc = flm_tokenizer_load_json(tok, json, size, path, params, err);
    flm_free(json);
    return rc;
}

void flm_tokenizer_destroy(flm_tokenizer **tok)
{
    if (!tok || !*tok)
        return;
    flm_tokenizer *t = *tok;
    flm_free(t->entries);
    flm_free(t->pool);
    flm_free(t->vocab_slots);
    flm_free(t->merge_keys);
    flm_free(t->merge_vals);
    flm_free(t->added);
    flm_free(t);
    *tok = NULL;
}

int32_t flm_tokenizer_n_ids(const flm_tokenizer *t)
{
    return t->n_ids;
}

const char *flm_tokenizer_piece(const flm_tokenizer *t, int32_t id)
{
    if (id < 0 || id >= t->n_ids || !t->entries[id].flags)
        return NULL;
    return t->pool + t->entries[id].piece_off;
}

int flm_tokenizer_is_special(const flm_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_ids && (t->entries[id].flags & E_SPECIAL) != 0;
}

size_t flm_tokenizer_memory_size(const flm_tokenizer *t)
{
    return sizeof *t + (size_t)t->n_ids * sizeof *t->entries + t->pool_cap +
           (t->vocab_mask + 1) * sizeof *t->vocab_slots +
           (t->merge_mask + 1) * (sizeof *t->merge_keys + sizeof *t->merge_vals) +
           t->n_added * sizeof *t->added;
}

/* ---- UTF-8 --------------------------------------------------------------------------------- */

/* Length of the valid sequence at s[i] (1..4), or -(length of the maximal invalid subpart). */
static int utf8_seq(const uint8_t *s, size_t n, size_t i)
{
    uint8_t b = s[i];
    if (b < 0x80)
        return 1;
    int need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF)
        need = 1;
    else if (b >= 0xE0 && b <= 0xEF) {
        need = 2;
        if (b == 0xE0)
            lo = 0xA0;
        else if (b == 0xED)
            hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3;
        if (b == 0xF0)
            lo = 0x90;
        else if (b == 0xF4)
            hi = 0x8F;
    } else {
        return -1;
    }
    for (int k = 1; k <= need; k++) {
        if (i + (size_t)k >= n || s[i + k] < lo || s[i + k] > hi)
            return -k;
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

size_t flm_utf8_check(const char *text, size_t size)
{
    const uint8_t *s = (const uint8_t *)text;
    size_t i = 0;
    while (i < size) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int l = utf8_seq(s, size, i);
        if (l < 0)
            return i;
        i += (size_t)l;
    }
    return size;
}

/* Writes text with every maximal invalid subpart replaced by U+FFFD into *out. */
static int utf8_lossy(const char *text, size_t size, char **out, size_t *cap, size_t *out_size)
{
    const uint8_t *s = (const uint8_t *)text;
    size_t k = 0;
    if (size > (SIZE_MAX - 1) / 3 || flm_grow((void **)out, cap, size * 3 + 1, 1) < 0)
        return FLM_ENOMEM;
    for (size_t i = 0; i < size;) {
        int l = utf8_seq(s, size, i);
        if (l > 0) {
            memcpy(*out + k, s + i, (size_t)l);
            k += (size_t)l;
            i += (size_t)l;
        } else {
            memcpy(*out + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i += (size_t)-l;
        }
    }
    (*out)[k] = 0;
    *out_size = k;
    return 0;
}

/* NFC of valid UTF-8 s[0..n) into *out. */
static int nfc(const char *s, size_t n, int32_t **cps, size_t *cps_cap, char **out, size_t *cap,
               size_t *out_size)
{
    const utf8proc_option_t opt = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    if (n > (size_t)INT32_MAX / 4)
        return FLM_ERANGE;
    for (;;) {
        utf8proc_ssize_t m = utf8proc_decompose((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n,
                                                *cps, (utf8proc_ssize_t)*cps_cap, opt);
        if (m < 0)
            return FLM_EFORMAT;
        if ((size_t)m > *cps_cap) {
            if (flm_grow((void **)cps, cps_cap, (size_t)m, sizeof **cps) < 0)
                return FLM_ENOMEM;
            continue;
        }
        m = utf8proc_normalize_utf32(*cps, m, opt);
        if (m < 0)
            return FLM_EFORMAT;
        if (flm_grow((void **)out, cap, (size_t)m * 4 + 1, 1) < 0)
            return FLM_ENOMEM;
        size_t k = 0;
        for (utf8proc_ssize_t i = 0; i < m; i++)
            k += (size_t)utf8proc_encode_char((*cps)[i], (utf8proc_uint8_t *)*out + k);
        (*out)[k] = 0;
        *out_size = k;
        return 0;
    }
}

int flm_utf8_nfc(const char *text, size_t size, char **out, size_t *out_size, size_t *out_cap,
                 flm_error *err)
{
    size_t bad = flm_utf8_check(text, size);
    if (bad != size)
        return flm_error_set(err, FLM_EFORMAT, "invalid UTF-8 at byte offset %zu (byte 0x%02x)",
                             bad, (unsigned)(uint8_t)text[bad]);
    int32_t *cps = NULL;
    size_t cps_cap = 0;
    int rc = nfc(text, size, &cps, &cps_cap, out, out_cap, out_size);
    flm_free(cps);
    if (rc < 0)
        return flm_error_set(err, rc, "NFC normalization failed (%s)", flm_error_name(rc));
    return 0;
}

/* ---- encode -------------------------------------------------------------------------------- */

static inline int push_id(flm_token_buf *buf, int32_t id)
{
    if (buf->n_ids == buf->cap_ids &&
        flm_grow((void **)&buf->ids, &buf->cap_ids, buf->n_ids + 1, sizeof *buf->ids) < 0)
        return FLM_ENOMEM;
    buf->ids[buf->n_ids++] = id;
    return 0;
}

static inline uint32_t pair_rank(const flm_tokenizer *t, int32_t a, int32_t b)
{
    uint64_t v = merge_get(t, a, b);
    return v == NO_MERGE ? UINT32_MAX : (uint32_t)(v >> 32);
}

static int heap_less(const heap_item *a, const heap_item *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static int heap_push(scratch *sc, size_t *n, heap_item it)
{
    if (flm_grow((void **)&sc->heap, &sc->heap_cap, *n + 1, sizeof *sc->heap) < 0)
        return FLM_ENOMEM;
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&it, &sc->heap[p]))
            break;
        sc->heap[i] = sc->heap[p];
        i = p;
    }
    sc->heap[i] = it;
    return 0;
}

static heap_item heap_pop(scratch *sc, size_t *n)
{
    heap_item top = sc->heap[0], last = sc->heap[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && heap_less(&sc->heap[c + 1], &sc->heap[c]))
            c++;
        if (!heap_less(&sc->heap[c], &last))
            break;
        sc->heap[i] = sc->heap[c];
        i = c;
    }
    if (*n)
        sc->heap[i] = last;
    return top;
}

/* Long pieces: lowest rank first, leftmost among equal ranks, with a heap (n log n). */
static int bpe_long(const flm_tokenizer *t, scratch *sc, size_t n, flm_token_buf *buf)
{
    int32_t *sym = sc->sym, *prev = sc->prev, *next = sc->next;
    size_t nh = 0;
    int rc;
    for (size_t i = 0; i < n; i++) {
        prev[i] = (int32_t)i - 1;
        next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        uint32_t r = pair_rank(t, sym[i], sym[i + 1]);
        if (r != UINT32_MAX &&
            (rc = heap_push(sc, &nh, (heap_item){r, (uint32_t)i, sym[i], sym[i + 1]})) < 0)
            return rc;
    }
    while (nh) {
        heap_item it = heap_pop(sc, &nh);
        int32_t p = (int32_t)it.pos, q = next[p];
        if (sym[p] != it.left || q < 0 || sym[q] != it.right)
            continue; /* stale: one side was merged since */
        sym[p] = (int32_t)(uint32_t)merge_get(t, it.left, it.right);
        sym[q] = -1;
        next[p] = next[q];
        if (next[q] >= 0)
            prev[next[q]] = p;
        if (prev[p] >= 0) {
            uint32_t r = pair_rank(t, sym[prev[p]], sym[p]);
            if (r != UINT32_MAX &&
                (rc = heap_push(sc, &nh, (heap_item){r, (uint32_t)prev[p], sym[prev[p]], sym[p]})) <
                    0)
                return rc;
        }
        if (next[p] >= 0) {
            uint32_t r = pair_rank(t, sym[p], sym[next[p]]);
            if (r != UINT32_MAX &&
                (rc = heap_push(sc, &nh, (heap_item){r, (uint32_t)p, sym[p], sym[next[p]]})) < 0)
                return rc;
        }
    }
    for (int32_t i = 0; i >= 0; i = next[i])
        if ((rc = push_id(buf, sym[i])) < 0)
            return rc;
    return 0;
}

static int bpe_piece(const flm_tokenizer *t, scratch *sc, const uint8_t *p, size_t n,
                     flm_token_buf *buf)
{
    if (n == 1)
        return push_id(buf, t->byte_id[p[0]]);
    if (t->ignore_merges) {
        int32_t id = vocab_get(t, p, n);
        if (id >= 0)
            return push_id(buf, id);
    }
    if (n > sc->sym_cap) {
        size_t cap = sc->sym_cap;
        if (flm_grow((void **)&sc->sym, &cap, n, sizeof *sc->sym) < 0)
            return FLM_ENOMEM;
        cap = sc->sym_cap;
        if (flm_grow((void **)&sc->rank, &cap, n, sizeof *sc->rank) < 0)
            return FLM_ENOMEM;
        cap = sc->sym_cap;
        if (flm_grow((void **)&sc->prev, &cap, n, sizeof *sc->prev) < 0)
            return FLM_ENOMEM;
        cap = sc->sym_cap;
        if (flm_grow((void **)&sc->next, &cap, n, sizeof *sc->next) < 0)
            return FLM_ENOMEM;
        sc->sym_cap = cap;
    }
    int32_t *sym = sc->sym;
    for (size_t i = 0; i < n; i++)
        sym[i] = t->byte_id[p[i]];
    if (n > SMALL_PIECE)
        return bpe_long(t, sc, n, buf);
    /* Short pieces: keep the symbols packed and the rank of each adjacent pair; merge the
     * lowest rank (leftmost on ties) until no pair merges. */
    uint32_t *rank = sc->rank;
    size_t m = n;
    for (size_t i = 0; i + 1 < m; i++)
        rank[i] = pair_rank(t, sym[i], sym[i + 1]);
    while (m > 1) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < m; i++)
            if (rank[i] < rank[best])
                best = i;
        if (rank[best] == UINT32_MAX)
            break;
        sym[best] = (int32_t)(uint32_t)merge_get(t, sym[best], sym[best + 1]);
        memmove(sym + best + 1, sym + best + 2, (m - best - 2) * sizeof *sym);
        if (best + 2 < m)
            memmove(rank + best + 1, rank + best + 2, (m - best - 2) * sizeof *rank);
        m--;
        if (best > 0)
            rank[best - 1] = pair_rank(t, sym[best - 1], sym[best]);
        if (best + 1 < m)
            rank[best] = pair_rank(t, sym[best], sym[best + 1]);
    }
    for (size_t i = 0; i < m; i++) {
        int rc = push_id(buf, sym[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Pre-tokenizes and BPE-encodes normalized text s[0..n). */
static int encode_normalized(const flm_tokenizer *t, scratch *sc, const char *s, size_t n,
                             flm_token_buf *buf)
{
    const uint8_t *u = (const uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        size_t e = flm_tokenizer_pretok_next(u, n, i, t->ascii_class);
        int rc = bpe_piece(t, sc, u + i, e - i, buf);
        if (rc < 0)
            return rc;
        i = e;
    }
    return 0;
}

static int is_ws_at(const uint8_t *s, size_t n, size_t i, size_t *len, int backwards)
{
    /* whitespace test of the character starting (or, backwards, ending) at i */
    size_t start = i;
    if (backwards) {
        if (i == 0)
            return 0;
        start = i - 1;
        while (start > 0 && (s[start] & 0xC0) == 0x80)
            start--;
    } else if (i >= n) {
        return 0;
    }
    utf8proc_int32_t cp;
    utf8proc_ssize_t l = utf8proc_iterate(s + start, (utf8proc_ssize_t)(n - start), &cp);
    if (l <= 0)
        return 0;
    *len = (size_t)l;
    return (flm_tokenizer_class(cp) & FLM_TOK_CLASS_SPACE) != 0;
}

/* Finds the leftmost-longest added token (of the set marked by first[]) in s[from..n). */
static int find_added(const flm_tokenizer *t, const char *s, size_t n, size_t from, int normalized,
                      size_t *ms, size_t *me, int32_t *id)
{
    const uint8_t *first = normalized ? t->first_norm : t->first_raw;
    for (size_t i = from; i < n; i++) {
        if (!first[(uint8_t)s[i]])
            continue;
        for (size_t k = 0; k < t->n_added; k++) {
            const added_tok *a = &t->added[k];
            if ((a->normalized && t->nfc) != normalized || a->len > n - i ||
                memcmp(s + i, t->pool + a->off, a->len))
                continue;
            size_t st = i, en = i + a->len, l;
            if (a->lstrip)
                while (st > from && is_ws_at((const uint8_t *)s, n, st, &l, 1))
                    st -= l;
            if (a->rstrip)
                while (is_ws_at((const uint8_t *)s, n, en, &l, 0))
                    en += l;
            *ms = st;
            *me = en;
            *id = a->id;
            return 1;
        }
    }
    return 0;
}

static int encode_gap(const flm_tokenizer *t, scratch *sc, const char *s, size_t n,
                      flm_token_buf *buf)
{
    int rc;
    if (t->nfc) {
        int ascii = 1;
        for (size_t i = 0; i < n && ascii; i++)
            ascii = (uint8_t)s[i] < 0x80;
        if (!ascii) {
            size_t m;
            if ((rc = nfc(s, n, &sc->cps, &sc->cps_cap, &sc->nfc, &sc->nfc_cap, &m)) < 0)
                return rc;
            s = sc->nfc;
            n = m;
        }
    }
    if (!t->n_norm_added || !t->params.split_added)
        return encode_normalized(t, sc, s, n, buf);
    size_t pos = 0, ms, me;
    int32_t id;
    while (find_added(t, s, n, pos, 1, &ms, &me, &id)) {
        if ((rc = encode_normalized(t, sc, s + pos, ms - pos, buf)) < 0 ||
            (rc = push_id(buf, id)) < 0)
            return rc;
        pos = me;
    }
    return encode_normalized(t, sc, s + pos, n - pos, buf);
}

int flm_tokenizer_encode(const flm_tokenizer *t, const char *text, size_t size, flm_token_buf *buf,
                         flm_error *err)
{
    int rc;
    buf->n_ids = 0;
    if (!buf->scratch && !(buf->scratch = flm_calloc(1, sizeof(scratch))))
        return flm_error_set(err, FLM_ENOMEM, "tokenizer: out of memory");
    scratch *sc = buf->scratch;
    size_t bad = flm_utf8_check(text, size);
    if (bad != size) {
        if (!t->params.lossy_utf8)
            return flm_error_set(err, FLM_EFORMAT, "invalid UTF-8 at byte offset %zu (byte 0x%02x)",
                                 bad, (unsigned)(uint8_t)text[bad]);
        if ((rc = utf8_lossy(text, size, &sc->clean, &sc->clean_cap, &size)) < 0)
            return flm_error_set(err, rc, "tokenizer: out of memory");
        text = sc->clean;
    }
    size_t pos = 0, ms, me;
    int32_t id;
    if (t->params.split_added) {
        while (find_added(t, text, size, pos, 0, &ms, &me, &id)) {
            if ((rc = encode_gap(t, sc, text + pos, ms - pos, buf)) < 0 ||
                (rc = push_id(buf, id)) < 0)
                goto fail;
            pos = me;
        }
    }
    if ((rc = encode_gap(t, sc, text + pos, size - pos, buf)) < 0)
        goto fail;
    return 0;
fail:
    buf->n_ids = 0;
    return flm_error_set(err, rc, "tokenizer: %s while encoding %zu bytes",
                         rc == FLM_ENOMEM ? "out of memory" : flm_error_name(rc), size);
}

void flm_token_buf_free(flm_token_buf *buf)
{
    if (!buf)
        return;
    scratch *sc = buf->scratch;
    if (sc) {
        flm_free(sc->clean);
        flm_free(sc->cps);
        flm_free(sc->nfc);
        flm_free(sc->sym);
        flm_free(sc->rank);
        flm_free(sc->prev);
        flm_free(sc->next);
        flm_free(sc->heap);
        flm_free(sc);
    }
    flm_free(buf->ids);
    memset(buf, 0, sizeof *buf);
}

/* ---- decode -------------------------------------------------------------------------------- */

int flm_tokenizer_decode(const flm_tokenizer *t, const int32_t *ids, size_t n_ids, int flags,
                         char **text, size_t *size, size_t *cap, flm_error *err)
{
    size_t k = 0;
    for (size_t i = 0; i < n_ids; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_ids || !t->entries[id].flags)
            return flm_error_set(err, FLM_ERANGE,
                                 "decode: id %d at index %zu is not in the "
                                 "vocabulary (0..%d)",
                                 (int)id, i, (int)t->n_ids - 1);
        const tok_entry *e = &t->entries[id];
        if ((flags & FLM_TOKENIZER_SKIP_SPECIAL) && (e->flags & E_SPECIAL))
            continue;
        if (flm_grow((void **)text, cap, k + e->bytes_len + 1, 1) < 0)
            return flm_error_set(err, FLM_ENOMEM, "decode: out of memory");
        memcpy(*text + k, t->pool + e->bytes_off, e->bytes_len);
        k += e->bytes_len;
    }
    if (flm_grow((void **)text, cap, k + 1, 1) < 0)
        return flm_error_set(err, FLM_ENOMEM, "decode: out of memory");
    (*text)[k] = 0;
    *size = k;
    if ((flags & FLM_TOKENIZER_LOSSY) && flm_utf8_check(*text, k) != k) {
        char *fixed = NULL;
        size_t fixed_cap = 0;
        if (utf8_lossy(*text, k, &fixed, &fixed_cap, size) < 0) {
            flm_free(fixed);
            return flm_error_set(err, FLM_ENOMEM, "decode: out of memory");
        }
        flm_free(*text);
        *text = fixed;
        *cap = fixed_cap;
    }
    return 0;
}
