/* Index: registration, stats, locate, quarantine, check against shards, merge, migrations. */
#include <math.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "flm_alloc.h"
#include "flm_util.h"
#include "flm_index.h"
#include "flm_shard.h"
#include "flm_synth.h"
#include "tap.h"
#include "test_util.h"

static flm_profiles prof;

/* Writes n_shards shards of per samples each into dataset dir, registered in its index. */
static void build(const char *dir, const char *prefix, int n_shards, int per)
{
    flm_index *idx = NULL;
    flm_error err = {0};
    if (flm_index_open(&idx, dir, FLM_INDEX_CREATE, &err) < 0) {
        tap_diag("%s", err.msg);
        abort();
    }
    int64_t run;
    flm_index_begin_run(idx, "test_index", "{\"recipe\":1}", 5, &prof, &run, &err);
    flm_synth_params sp = flm_synth_default_params();
    sp.min_frames = 50;
    sp.max_frames = 400;
    flm_shard_params shp = flm_shard_default_params(&prof);
    for (int k = 0; k < n_shards; k++) {
        char rel[256], path[1400], key[64];
        snprintf(rel, sizeof rel, "shards/%s%06d.flms", prefix, k);
        snprintf(path, sizeof path, "%s/%s", dir, rel);
        flm_shard_writer *w = NULL;
        flm_shard_writer_create(&w, path, &shp, &err);
        flm_sample *s[64];
        flm_record_info info[64];
        const char *done[64];
        char keys[64][64];
        for (int i = 0; i < per; i++) {
            snprintf(key, sizeof key, "%s%d-%d", prefix, k, i);
            flm_synth_sample(&s[i], &prof, &sp, 11, key, &err);
            flm_shard_writer_add(w, s[i], &info[i], &err);
            snprintf(keys[i], sizeof keys[i], "input-%s", key);
            done[i] = keys[i];
        }
        flm_shard_writer_finish(w, &err);
        struct stat st;
        stat(path, &st);
        if (flm_index_add_shard(idx, run, rel, (uint64_t)st.st_size, (const flm_sample *const *)s,
                                info, (size_t)per, done, NULL, (size_t)per, &err) < 0)
            tap_diag("add_shard: %s", err.msg);
        flm_shard_writer_destroy(&w);
        for (int i = 0; i < per; i++)
            flm_sample_destroy(&s[i]);
    }
    flm_index_quarantine(idx, run, "input-bad", "/data/bad.flac", "decode",
                         "/data/bad.flac: Invalid data found when processing input", &err);
    flm_index_close(&idx);
}

typedef struct problems {
    int n;
    char text[8192];
} problems;

static void on_problem(void *user, int severity, const char *msg)
{
    problems *p = user;
    p->n += severity;
    size_t len = strlen(p->text);
    snprintf(p->text + len, sizeof p->text - len, "%s%s\n", severity ? "E " : "N ", msg);
}

static int64_t check(const char *dir, problems *p)
{
    memset(p, 0, sizeof *p);
    flm_index *idx = NULL;
    flm_error err = {0};
    int64_t n_err = -1;
    if (flm_index_open(&idx, dir, FLM_INDEX_READONLY, &err) == 0)
        flm_index_check(idx, on_problem, NULL, p, &n_err, &err);
    else
        tap_diag("%s", err.msg);
    flm_index_close(&idx);
    return n_err;
}

typedef struct agg {
    int64_t n;
    double hours;
    int groups;
} agg;

static void on_stats(void *user, const char *g, int64_t n, int64_t frames, double hours)
{
    agg *a = user;
    a->n += n;
    a->hours += hours;
    a->groups++;
    (void)g;
    (void)frames;
}

/* An index written by schema version 1 migrates to the latest on a writable open. */
static void migration(const char *dir)
{
    char path[1200], sql_path[1200];
    snprintf(path, sizeof path, "%s/v1.sqlite", dir);
    snprintf(sql_path, sizeof sql_path, "%s/schemas/index/001-init.sql", SOURCE_ROOT);
    char *sql = NULL;
    size_t n;
    sqlite3 *db = NULL;
    int ok = flm_read_file(sql_path, &sql, &n, 1 << 20, NULL) == 0 &&
             sqlite3_open(path, &db) == SQLITE_OK &&
             sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK &&
             sqlite3_exec(db,
                          "PRAGMA user_version = 1; INSERT INTO runs (started_at, tool_version,"
                          " command) VALUES ('t', '0', 'old')",
                          NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_close(db);
    flm_free(sql);
    TAP_OK(ok, "a version-1 index made from schemas/index/001-init.sql");
    flm_index *idx = NULL;
    flm_error err = {0};
    TAP_EQ_INT(flm_index_open(&idx, path, FLM_INDEX_READONLY, &err), FLM_EFORMAT,
               "read-only open of an old index asks for a migration");
    TAP_CONTAINS(err.msg, "schema version 1", "saying which version it found");
    TAP_EQ_INT(flm_index_open(&idx, path, 0, &err), 0, "writable open migrates");
    TAP_EQ_INT(flm_index_schema_version(idx), flm_index_latest_schema_version(), "to the latest");
    flm_index_close(&idx);
    ok =
        sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_exec(db, "SELECT n_monologue, n_wait, n_speak, n_listen FROM samples", NULL, NULL,
                     NULL) == SQLITE_OK &&
        sqlite3_exec(db, "SELECT 1 FROM runs WHERE command = 'old'", NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_close(db);
    TAP_OK(ok, "new columns exist and old rows are kept");
}

int main(void)
{
    flm_profiles_default(&prof);
    char a[1024], b[1024], c[1024];
    temp_dir(a, sizeof a, "idx_a");
    temp_dir(b, sizeof b, "idx_b");
    temp_dir(c, sizeof c, "idx_c");
    build(a, "a", 3, 10);
    migration(c);
    build(b, "b", 2, 7);

    flm_index *idx = NULL;
    flm_error err = {0};
    TAP_EQ_INT(flm_index_open(&idx, a, FLM_INDEX_READONLY, &err), 0, "open read-only by directory");
    TAP_EQ_INT(flm_index_schema_version(idx), flm_index_latest_schema_version(),
               "user_version is the latest migration");
    TAP_EQ_INT(flm_index_count_samples(idx, &err), 30, "30 samples indexed");
    agg total = {0}, by_corpus = {0};
    flm_index_stats(idx, NULL, on_stats, &total, &err);
    flm_index_stats(idx, "corpus", on_stats, &by_corpus, &err);
    TAP_OK(total.n == 30 && by_corpus.n == 30 && by_corpus.groups >= 1,
           "stats: total and per-corpus counts agree");
    TAP_OK(total.hours > 0 && fabs(total.hours - by_corpus.hours) < 1e-9, "hours add up");
    TAP_EQ_INT(flm_index_stats(idx, "colour", on_stats, &total, &err), FLM_EINVAL,
               "unknown group rejected");
    char *shard = NULL;
    uint64_t rec = 0;
    TAP_EQ_INT(flm_index_locate(idx, "a1-4", &shard, &rec, &err), 0, "locate a sample");
    TAP_CONTAINS(shard, "shards/a000001.flms", "in the right shard");
    TAP_EQ_INT(rec, 4, "at the right record");
    flm_shard_reader *r = NULL;
    flm_record_view v;
    int ok =
        flm_shard_reader_open(&r, shard, &err) == 0 && flm_shard_reader_view(r, rec, &v, &err) == 0;
    TAP_OK(ok && v.id && strcmp(v.id, "a1-4") == 0, "the located record is that sample");
    flm_shard_reader_close(&r);
    flm_free(shard);
    TAP_EQ_INT(flm_index_locate(idx, "nope", &shard, &rec, &err), FLM_ENOTFOUND, "unknown key");
    TAP_EQ_INT(flm_index_input_status(idx, "input-a2-3", &err), 1, "input marked done");
    TAP_EQ_INT(flm_index_input_status(idx, "input-bad", &err), 2, "input quarantined");
    TAP_EQ_INT(flm_index_input_status(idx, "never-seen", &err), 0, "unknown input");
    flm_index_close(&idx);

    problems p;
    TAP_EQ_INT(check(a, &p), 0, "check: a fresh dataset is clean");

    /* a leftover temporary file and an unregistered shard are notes, not errors */
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cp %s/shards/a000000.flms %s/shards/zz000009.flms && "
             "head -c 100 %s/shards/a000000.flms > %s/shards/a000003.flms.tmp-1-0",
             a, a, a, a);
    TAP_EQ_INT(system(cmd), 0, "add leftovers");
    TAP_EQ_INT(check(a, &p), 0, "check: leftovers of a killed writer are not errors");
    TAP_CONTAINS(p.text, "temporary file", "the temporary file is noted");
    TAP_CONTAINS(p.text, "not in the index", "the unregistered shard is noted");

    /* merge a and b into c */
    char ia[1100], ib[1100], ic[1100];
    snprintf(ia, sizeof ia, "%s/index.sqlite", a);
    snprintf(ib, sizeof ib, "%s/index.sqlite", b);
    snprintf(ic, sizeof ic, "%s/index.sqlite", c);
    const char *ins[2] = {ia, ib};
    TAP_EQ_INT(flm_index_merge(ic, ins, 2, 0, &err), 0, "merge two indexes");
    if (err.code)
        tap_diag("%s", err.msg);
    TAP_EQ_INT(flm_index_open(&idx, c, FLM_INDEX_READONLY, &err), 0, "open merged");
    TAP_EQ_INT(flm_index_count_samples(idx, &err), 44, "merged holds 30 + 14 samples");
    TAP_EQ_INT(flm_index_locate(idx, "b1-6", &shard, &rec, &err), 0, "locate a sample of b");
    TAP_OK(shard && strstr(shard, "../") != NULL, "shard path rewritten relative to the new index");
    ok =
        flm_shard_reader_open(&r, shard, &err) == 0 && flm_shard_reader_view(r, rec, &v, &err) == 0;
    TAP_OK(ok && strcmp(v.id, "b1-6") == 0, "and it resolves to the right record");
    flm_shard_reader_close(&r);
    flm_free(shard);
    TAP_EQ_INT(flm_index_input_status(idx, "input-bad", &err), 2, "quarantine merged");
    flm_index_close(&idx);
    TAP_EQ_INT(check(c, &p), 0, "check: merged index is clean");
    const char *dup[2] = {ia, ia};
    char id2[1100];
    snprintf(id2, sizeof id2, "%s/dup.sqlite", c);
    TAP_EQ_INT(flm_index_merge(id2, dup, 2, 0, &err), FLM_EMISMATCH, "merging duplicates fails");
    TAP_CONTAINS(err.msg, "a0-0", "naming the duplicate sample");
    TAP_EQ_INT(flm_index_merge(ic, ins, 2, 0, &err), FLM_EINVAL, "merge never overwrites an index");

    /* a shard modified behind the index's back (valid, but different content) */
    snprintf(cmd, sizeof cmd, "cp %s/shards/a000002.flms %s/shards/a000001.flms", a, a);
    TAP_EQ_INT(system(cmd), 0, "replace a shard");
    int64_t n = check(a, &p);
    TAP_OK(n > 0, "check: a replaced shard is caught (%lld errors)", (long long)n);
    TAP_CONTAINS(p.text, "a000001.flms", "the report names the shard");
    /* a shard deleted */
    snprintf(cmd, sizeof cmd, "rm %s/shards/a000000.flms", a);
    TAP_EQ_INT(system(cmd), 0, "delete a shard");
    n = check(a, &p);
    TAP_CONTAINS(p.text, "a000000.flms: cannot open", "check: a deleted shard is caught");
    /* a flipped byte in a record */
    snprintf(cmd, sizeof cmd,
             "printf '\\x55' | dd of=%s/shards/b000001.flms bs=1 seek=200 conv=notrunc 2>/dev/null",
             b);
    TAP_EQ_INT(system(cmd), 0, "corrupt a byte of b");
    TAP_OK(check(b, &p) > 0, "check: a corrupted record is caught");
    TAP_CONTAINS(p.text, "checksum mismatch", "as a checksum mismatch");

    /* injected allocation failures at every site of open, add_shard, locate and check */
    int alloc_bad = 0, alloc_ok = 0;
    for (int k = 0; k < 120; k++) {
        char d[1100], rel[64];
        snprintf(d, sizeof d, "%s/alloc%d", c, k);
        snprintf(cmd, sizeof cmd, "mkdir -p %s/shards && cp %s/shards/b000000.flms %s/shards/", d,
                 b, d);
        if (system(cmd) != 0)
            abort();
        snprintf(rel, sizeof rel, "shards/b000000.flms");
        flm_sample *s1 = random_sample(3, k, 20);
        flm_record_info ri = {0};
        const flm_sample *one[1] = {s1};
        flm_index *ix = NULL;
        char *sp = NULL;
        uint64_t rr;
        int64_t ne = 0;
        flm_alloc_fail_after(k);
        int64_t run = 0;
        int rc = flm_index_open(&ix, d, FLM_INDEX_CREATE, &err);
        if (rc == 0)
            rc = flm_index_begin_run(ix, "alloc", NULL, 0, &prof, &run, &err);
        if (rc == 0)
            rc = flm_index_add_shard(ix, run, rel, 1, one, &ri, 1, NULL, NULL, 0, &err);
        if (rc == 0)
            rc = flm_index_locate(ix, s1->id, &sp, &rr, &err);
        if (rc == 0)
            rc = flm_index_check(ix, NULL, NULL, NULL, &ne, &err);
        flm_alloc_fail_after(-1);
        alloc_ok += rc == 0;
        alloc_bad += rc < 0 && rc != FLM_ENOMEM && rc != FLM_EDB;
        flm_free(sp);
        flm_index_close(&ix);
        flm_sample_destroy(&s1);
    }
    TAP_EQ_INT(alloc_bad, 0,
               "injected allocation failures give FLM_ENOMEM (or a wrapped SQLite error)");
    TAP_OK(alloc_ok > 0, "and the calls succeed once past every allocation site");

    TAP_EQ_INT(flm_index_open(&idx, "/nonexistent/dir/index.sqlite", FLM_INDEX_READONLY, &err),
               FLM_ENOTFOUND, "missing index");
    TAP_CONTAINS(err.msg, "/nonexistent/dir/index.sqlite", "error names it");

    /* damage inside the index itself (issue 18, case 9): each is an error naming what is wrong */
    {
        char e[1024], ip[1100], sql[512];
        temp_dir(e, sizeof e, "idx_e");
        build(e, "e", 4, 40); /* 160 samples: the samples table spans several pages */
        snprintf(ip, sizeof ip, "%s/index.sqlite", e);
        TAP_EQ_INT(check(e, &p), 0, "check: a fresh index passes quick_check, schema, metadata");
        char *before = NULL, *after = NULL;
        size_t nb = 0, na = 0;
        flm_read_file(ip, &before, &nb, 1 << 26, NULL);
        check(e, &p);
        flm_read_file(ip, &after, &na, 1 << 26, NULL);
        TAP_OK(before && after && nb == na && memcmp(before, after, nb) == 0,
               "check leaves the index file as it was");
        flm_free(before);
        flm_free(after);
        /* a copy of e as d (e_NAME) with sql_text run on its index */
        sqlite3 *db = NULL;
#define DAMAGED(name, sql_text)                                                                    \
    do {                                                                                           \
        snprintf(d, sizeof d, "%s_%s", e, name);                                                   \
        snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r %s %s", d, e, d);                            \
        snprintf(ip, sizeof ip, "%s/index.sqlite", d);                                             \
        TAP_OK(system(cmd) == 0 && sqlite3_open(ip, &db) == SQLITE_OK &&                           \
                   sqlite3_exec(db, sql_text, NULL, NULL, NULL) == SQLITE_OK,                      \
               "damage: %s", sql_text);                                                            \
        sqlite3_close(db);                                                                         \
    } while (0)
        char d[1100];
        DAMAGED("events", "DROP TABLE events");
        TAP_EQ_INT(check(d, &p), 1, "check: a dropped table is one error");
        TAP_CONTAINS(p.text, "schema: table \"events\" is missing", "naming the table");
        DAMAGED("column", "ALTER TABLE samples DROP COLUMN n_wait");
        TAP_EQ_INT(check(d, &p), 1, "check: a dropped column is one error");
        TAP_CONTAINS(p.text, "table \"samples\" has no column \"n_wait\"", "naming it");
        DAMAGED("index", "DROP INDEX samples_by_corpus");
        TAP_EQ_INT(check(d, &p), 1, "check: a dropped SQL index is one error");
        TAP_CONTAINS(p.text, "index \"samples_by_corpus\" is missing", "naming it");
        DAMAGED("meta", "UPDATE samples SET metadata = '{\"a\": ' WHERE sample_key = 'e1-3';"
                        "UPDATE samples SET metadata = '\"text\"' WHERE sample_key = 'e2-5';"
                        "UPDATE samples SET metadata = '{\"a\": 1, \"a\": 2}' "
                        "WHERE sample_key = 'e3-7'");
        TAP_EQ_INT(check(d, &p), 3, "check: three samples with bad metadata, three errors");
        TAP_CONTAINS(p.text, "E sample e1-3: metadata is not JSON", "naming the first sample");
        TAP_CONTAINS(p.text, "E sample e2-5: metadata is not a JSON object: \"text\"",
                     "a JSON string is not an object");
        TAP_CONTAINS(p.text, "E sample e3-7: metadata is not JSON: duplicate object key",
                     "a duplicate key is refused");
        DAMAGED("orphans", "DELETE FROM shards WHERE path = 'shards/e000001.flms'");
        TAP_OK(check(d, &p) >= 1, "check: samples whose shard row was deleted");
        TAP_CONTAINS(p.text, "40 row(s) of samples refer to rows of shards that do not exist",
                     "are counted");
        /* user_version changed under an open handle */
        DAMAGED("version", "SELECT 1");
        flm_index *ix = NULL;
        int64_t ne = -1;
        memset(&p, 0, sizeof p);
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d",
                 flm_index_latest_schema_version() + 1);
        if (flm_index_open(&ix, d, FLM_INDEX_READONLY, &err) == 0 &&
            sqlite3_open(ip, &db) == SQLITE_OK && sqlite3_exec(db, sql, NULL, NULL, NULL) == 0)
            flm_index_check(ix, on_problem, NULL, &p, &ne, &err);
        sqlite3_close(db);
        flm_index_close(&ix);
        TAP_EQ_INT(ne, 1, "check: a user_version other than this build's is an error");
        snprintf(sql, sizeof sql, "this build expects %d", flm_index_latest_schema_version());
        TAP_CONTAINS(p.text, sql, "saying which version the build expects");
        /* 512 bytes in the middle of the middle leaf page of the samples table */
        DAMAGED("page", "SELECT 1");
        int page = 0, n_pages = 0;
        sqlite3_stmt *st = NULL;
        if (sqlite3_open(ip, &db) == SQLITE_OK &&
            sqlite3_prepare_v2(db,
                               "SELECT pageno, count(*) OVER () FROM dbstat WHERE name = 'samples' "
                               "AND pagetype = 'leaf' ORDER BY pageno",
                               -1, &st, NULL) == SQLITE_OK)
            for (int i = 0; sqlite3_step(st) == SQLITE_ROW; i++)
                if (i == sqlite3_column_int(st, 1) / 2) {
                    page = sqlite3_column_int(st, 0);
                    n_pages = sqlite3_column_int(st, 1);
                }
        sqlite3_finalize(st);
        sqlite3_close(db);
        TAP_OK(n_pages >= 3, "the samples table has %d leaf pages; damage page %d", n_pages, page);
        FILE *f = fopen(ip, "r+b");
        uint8_t junk[512];
        memset(junk, 0xab, sizeof junk);
        TAP_OK(f && fseek(f, (long)(page - 1) * 4096 + 2048, SEEK_SET) == 0 &&
                   fwrite(junk, 1, sizeof junk, f) == sizeof junk,
               "overwrite the middle of the page");
        if (f)
            fclose(f);
        TAP_OK(check(d, &p) > 0, "check: a damaged page is caught");
        snprintf(sql, sizeof sql, "database corruption: On tree page %d ", page);
        TAP_CONTAINS(p.text, sql, "as database corruption, naming the page");
        TAP_CONTAINS(p.text, "database corruption: reading the samples of shard",
                     "and the rows it could not read");
        TAP_OK(!strstr(p.text, "is not in the index"), "not as records missing from the index");
#undef DAMAGED
    }
    return tap_done();
}
