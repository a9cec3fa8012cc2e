/* Fuzz target: index rows. The input is decoded into rows of a real index (a fresh copy of an
 * empty index made by flm_index_open, filled with SQLite directly, as a damaged or hand-edited
 * catalog would be): shards, samples, events and inputs with arbitrary texts, negative or huge
 * numbers, NULLs and non-JSON metadata. Then every reader of those rows runs: stats (each
 * grouping), dialog stats, quarantine list, counts, locate, check, and the training side's
 * dataset + epoch. None may crash; errors are fine. */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flm_alloc.h"
#include "flm_dataset.h"
#include "flm_index.h"
#include "flm_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct reader {
    const uint8_t *p;
    size_t n;
} reader;

static unsigned byte(reader *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

/* A number from the interesting set, or raw bytes. */
static int64_t number(reader *r)
{
    static const int64_t special[] = {0,         1,         -1,        2,         17,      8192,
                                      INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, 1048576, -8192};
    unsigned b = byte(r);
    if (b < 2 * sizeof special / sizeof special[0])
        return special[b / 2];
    int64_t v = 0;
    for (int i = 0; i < 4; i++)
        v = v << 8 | byte(r);
    return b & 1 ? -v : v;
}

/* Binds a text of up to 31 bytes from the input (or NULL / a JSON-ish pattern). */
static void bind_text(sqlite3_stmt *st, int col, reader *r)
{
    static const char *const pat[] = {"{}",
                                      "{\"dialog.interrupts\": 3}",
                                      "[1,2",
                                      "tts",
                                      "en",
                                      "../../../etc/passwd",
                                      "shards/000000.flms",
                                      ""};
    unsigned b = byte(r);
    if (b < 16) {
        sqlite3_bind_null(st, col);
    } else if (b < 48) {
        sqlite3_bind_text(st, col, pat[b % 8], -1, SQLITE_STATIC);
    } else {
        size_t len = b % 32 < r->n ? b % 32 : r->n;
        sqlite3_bind_blob(st, col, r->p, (int)len, SQLITE_TRANSIENT);
        r->p += len, r->n -= len;
    }
}

static void fill(sqlite3 *db, reader *r)
{
    static const char *const sql[4] = {
        "INSERT INTO shards (id, path, run_id, n_records, n_frames, file_size, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        "INSERT INTO samples (id, sample_key, shard_id, record, n_frames, style, stage, language, "
        "corpus, speakers, duration_s, checksum, metadata) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, coalesce(?13, '{}'))",
        "INSERT INTO events (sample_id, kind, frame, n_frames, value) VALUES (?1, ?2, ?3, ?4, ?5)",
        "INSERT INTO inputs (key, path, status, stage, error, run_id, updated_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"};
    static const int n_cols[4] = {7, 13, 5, 7};
    /* columns that are numbers in each statement (1-based bitmask) */
    static const uint32_t numeric[4] = {1u << 1 | 1u << 3 | 1u << 4 | 1u << 5 | 1u << 6,
                                        1u << 1 | 1u << 3 | 1u << 4 | 1u << 5 | 1u << 11,
                                        1u << 1 | 1u << 3 | 1u << 4 | 1u << 5, 1u << 6};
    sqlite3_exec(db, "PRAGMA foreign_keys = OFF; BEGIN", NULL, NULL, NULL);
    while (r->n > 0) {
        unsigned t = byte(r) % 4;
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, sql[t], -1, &st, NULL) != SQLITE_OK)
            break;
        for (int c = 1; c <= n_cols[t]; c++) {
            if (t == 3 && c == 3)
                sqlite3_bind_text(st, c, byte(r) & 1 ? "done" : "quarantined", -1, SQLITE_STATIC);
            else if (numeric[t] >> c & 1)
                c == 11 && t == 1 ? sqlite3_bind_double(st, c, (double)number(r) / 7.0)
                                  : sqlite3_bind_int64(st, c, number(r));
            else
                bind_text(st, c, r);
        }
        sqlite3_step(st); /* constraint violations are fine: the row is skipped */
        sqlite3_finalize(st);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
}

static void on_stats(void *u, const char *g, int64_t n, int64_t f, double h)
{
    (void)u, (void)g, (void)n, (void)f, (void)h;
}
static void on_quarantine(void *u, const char *k, const char *p, const char *s, const char *e)
{
    (void)u, (void)k, (void)p, (void)s, (void)e;
}
static void on_problem(void *u, int sev, const char *m)
{
    (void)u, (void)sev, (void)m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[64], path[128];
    static char *empty;
    static size_t empty_size;
    flm_error err = {0};
    if (!empty) { /* an empty index made once by the real code, copied for every input */
        snprintf(dir, sizeof dir, "/tmp/fuzz_index_rows.XXXXXX");
        if (!mkdtemp(dir))
            abort();
        snprintf(path, sizeof path, "%s/%s", dir, FLM_INDEX_FILE);
        flm_index *idx = NULL;
        if (flm_index_open(&idx, dir, FLM_INDEX_CREATE, &err) < 0)
            abort();
        flm_index_close(&idx);
        if (flm_read_file(path, &empty, &empty_size, (size_t)1 << 24, &err) < 0)
            abort();
    }
    char side[160];
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(empty, 1, empty_size, f) != empty_size || fclose(f) != 0)
        abort();
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) == SQLITE_OK) {
        reader r = {data, size};
        fill(db, &r);
    }
    sqlite3_close(db);

    flm_index *idx = NULL;
    if (flm_index_open(&idx, path, FLM_INDEX_READONLY, &err) == 0) {
        static const char *const groups[] = {NULL, "corpus", "language", "style", "stage"};
        for (int g = 0; g < 5; g++)
            flm_index_stats(idx, groups[g], on_stats, NULL, &err);
        flm_index_dialog_report rep;
        flm_index_dialog_stats(idx, &rep, &err);
        flm_index_list_quarantine(idx, on_quarantine, NULL, &err);
        flm_index_count_samples(idx, &err);
        char *shard = NULL;
        uint64_t rec;
        if (flm_index_locate(idx, "tts", &shard, &rec, &err) == 0)
            flm_free(shard);
        int64_t n_errors = 0;
        flm_index_check(idx, on_problem, NULL, NULL, &n_errors, &err);
        flm_index_close(&idx);
    }
    flm_dataset *ds = NULL;
    if (flm_dataset_open(&ds, path, &err) == 0) {
        flm_epoch_params ep = flm_epoch_default_params();
        flm_epoch *e = NULL;
        for (int64_t i = 0; i < flm_dataset_count(ds); i++)
            (void)flm_dataset_corpus(ds, i), (void)flm_dataset_frames(ds, i);
        if (flm_epoch_create(&e, ds, &ep, &err) == 0) {
            for (int64_t k = 0; k < flm_epoch_size(e); k++)
                (void)flm_epoch_sample(e, k);
            flm_epoch_destroy(&e);
        }
        flm_dataset_close(&ds);
    }
    return 0;
}
