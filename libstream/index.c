/* SQLite dataset index. Schema and migrations: the SQL files in schemas/index/ (embedded at build
 * time). */
#include "flm_index.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "flm_alloc.h"
#include "flm_config.h"
#include "flm_lock.h"
#include "flm_util.h"

extern const char *const flm_index_migrations[];
extern const size_t flm_index_n_migrations;

struct flm_index {
    sqlite3 *db;
    char *path;                 /* index file */
    char *dir;                  /* its directory */
    int32_t aud_empty, aud_pad; /* codec profile of the current run (for the listen counts) */
};

static int db_error(flm_index *idx, flm_error *err, const char *what)
{
    return flm_error_set(err, FLM_EDB, "index %s: %s: %s", idx->path, what,
                         sqlite3_errmsg(idx->db));
}

static int exec(flm_index *idx, const char *sql, flm_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(idx->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = flm_error_set(err, FLM_EDB, "index %s: %s", idx->path, msg ? msg : "error");
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

static int prepare(flm_index *idx, sqlite3_stmt **st, const char *sql, flm_error *err)
{
    if (sqlite3_prepare_v2(idx->db, sql, -1, st, NULL) != SQLITE_OK)
        return db_error(idx, err, "prepare");
    return 0;
}

static void now_iso(char *buf, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void hex64(char out[17], uint64_t v)
{
    snprintf(out, 17, "%016llx", (unsigned long long)v);
}

char *flm_index_resolve_path(const char *arg)
{
    struct stat st;
    if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
        size_t n = strlen(arg) + sizeof(FLM_INDEX_FILE) + 2;
        char *p = flm_malloc(n);
        if (p)
            snprintf(p, n, "%s/%s", arg, FLM_INDEX_FILE);
        return p;
    }
    return flm_strdup(arg);
}

int flm_index_latest_schema_version(void)
{
    return (int)flm_index_n_migrations;
}

int flm_index_schema_version(flm_index *idx)
{
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(idx->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    return v;
}

/* Names of up to a few tables of a database at schema version 0 (comma-separated into buf);
 * returns how many there are. A version-0 database with tables is not ours: migrating it would
 * add our tables to someone else's database. */
static int foreign_tables(flm_index *idx, char *buf, size_t size)
{
    sqlite3_stmt *st;
    int n = 0;
    buf[0] = 0;
    if (sqlite3_prepare_v2(idx->db,
                           "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND "
                           "name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK)
        return 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        size_t len = strlen(buf);
        if (n < 4 && name && len + strlen(name) + 8 < size)
            snprintf(buf + len, size - len, "%s%s", n ? ", " : "", name);
        else if (n == 4 && len + 8 < size)
            snprintf(buf + len, size - len, ", ...");
        n++;
    }
    sqlite3_finalize(st);
    return n;
}

/* Why a database at schema version v cannot be used by this build (0 if it can be migrated). */
static int check_version(flm_index *idx, int v, int writable, flm_error *err)
{
    char tables[256];
    if (v > (int)flm_index_n_migrations)
        return flm_error_set(err, FLM_EFORMAT,
                             "index %s: schema version %d is newer than this build (%d); "
                             "upgrade flmstream",
                             idx->path, v, (int)flm_index_n_migrations);
    if (v == 0 && foreign_tables(idx, tables, sizeof tables) > 0)
        return flm_error_set(err, FLM_EFORMAT,
                             "index %s: not a flmstream index (an SQLite database with other "
                             "tables: %s)",
                             idx->path, tables);
    if (v == 0 && !writable)
        return flm_error_set(err, FLM_EFORMAT,
                             "index %s: not a flmstream index (an empty database)", idx->path);
    if (v != (int)flm_index_n_migrations && !writable)
        return flm_error_set(err, FLM_EFORMAT,
                             "index %s: schema version %d, this build needs %d (migrate it "
                             "once: flm index migrate %s)",
                             idx->path, v, (int)flm_index_n_migrations, idx->path);
    return 0;
}

static int migrate(flm_index *idx, flm_error *err)
{
    int v = flm_index_schema_version(idx), rc;
    if (v < 0)
        return db_error(idx, err, "reading the schema version");
    if ((rc = check_version(idx, v, 1, err)) < 0)
        return rc;
    for (size_t i = (size_t)v; i < flm_index_n_migrations; i++) {
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %zu;", i + 1);
        rc = exec(idx, "BEGIN IMMEDIATE", err);
        if (rc == 0 && (rc = exec(idx, flm_index_migrations[i], err)) == 0 &&
            (rc = exec(idx, pragma, err)) == 0)
            rc = exec(idx, "COMMIT", err);
        if (rc < 0) {
            sqlite3_exec(idx->db, "ROLLBACK", NULL, NULL, NULL);
            return flm_error_prefix(err, "migration %zu", i + 1);
        }
    }
    return 0;
}

/* A new index is built under a temporary name and renamed into place once its schema is
 * committed, so a job killed at any moment never leaves an index file without tables. */
static int create_atomically(flm_index *idx, flm_error *err)
{
    size_t n = strlen(idx->path) + 32;
    char *tmp = flm_malloc(n);
    if (!tmp)
        return flm_error_set(err, FLM_ENOMEM, "index %s: out of memory", idx->path);
    snprintf(tmp, n, "%s.tmp-%ld", idx->path, (long)getpid());
    /* leftovers of a creation that was killed (with their -wal/-shm files) */
    const char *base = strrchr(idx->path, '/') ? strrchr(idx->path, '/') + 1 : idx->path;
    size_t bl = strlen(base);
    DIR *d = opendir(idx->dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (strncmp(de->d_name, base, bl) == 0 && strncmp(de->d_name + bl, ".tmp-", 5) == 0) {
            char stale[PATH_MAX + 256];
            snprintf(stale, sizeof stale, "%s/%s", idx->dir, de->d_name);
            unlink(stale);
        }
    }
    if (d)
        closedir(d);
    char *final = idx->path;
    idx->path = tmp;
    int rc = 0;
    if (sqlite3_open_v2(tmp, &idx->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK)
        rc = idx->db ? db_error(idx, err, "create")
                     : flm_error_set(err, FLM_ENOMEM, "index %s: out of memory", tmp);
    /* WAL from the start: switching the journal mode later is itself a write that a kill could
     * interrupt, leaving a hot rollback journal that read-only opens cannot replay */
    if (rc == 0)
        rc = exec(idx, "PRAGMA journal_mode = WAL", err);
    if (rc == 0)
        rc = migrate(idx, err);
    sqlite3_close(idx->db);
    idx->db = NULL;
    idx->path = final;
    if (rc == 0 && rename(tmp, final) < 0)
        rc = flm_error_set(err, FLM_EIO, "index %s: rename from %s failed: %s", final, tmp,
                           strerror(errno));
    if (rc == 0 && flm_fsync_dir(final) < 0)
        rc = flm_error_set(err, FLM_EIO, "index %s: fsync of its directory failed: %s", final,
                           strerror(errno));
    if (rc < 0)
        unlink(tmp);
    flm_free(tmp);
    return rc;
}

int flm_index_open(flm_index **out, const char *path, int flags, flm_error *err)
{
    *out = NULL;
    flm_index *idx = flm_calloc(1, sizeof *idx);
    if (!idx || !(idx->path = flm_index_resolve_path(path))) {
        flm_free(idx);
        return flm_error_set(err, FLM_ENOMEM, "index %s: out of memory", path);
    }
    flm_profiles defaults;
    flm_profiles_default(&defaults);
    idx->aud_empty = defaults.codec.aud_empty;
    idx->aud_pad = defaults.codec.aud_pad;
    char *slash = strrchr(idx->path, '/');
    idx->dir = slash ? flm_malloc((size_t)(slash - idx->path) + 1) : flm_strdup(".");
    int rc;
    if (!idx->dir) {
        rc = flm_error_set(err, FLM_ENOMEM, "index %s: out of memory", path);
        goto fail;
    }
    if (slash) {
        memcpy(idx->dir, idx->path, (size_t)(slash - idx->path));
        idx->dir[slash - idx->path] = 0;
        if (!idx->dir[0])
            strcpy(idx->dir, "/");
    }
    struct stat st;
    /* SQLite's open of a FIFO blocks; a directory or a device gives a vague error */
    if (stat(idx->path, &st) == 0 && !S_ISREG(st.st_mode)) {
        rc = flm_check_regular(idx->path, err);
        goto fail;
    }
    if (!(flags & FLM_INDEX_CREATE) && stat(idx->path, &st) != 0) {
        rc = flm_error_set(err, FLM_ENOTFOUND, "index %s: not found (%s)", idx->path,
                           strerror(errno));
        goto fail;
    }
    if ((flags & FLM_INDEX_CREATE) && stat(idx->path, &st) != 0 &&
        (rc = create_atomically(idx, err)) < 0)
        goto fail;
    struct statvfs vfs;
    int ro_fs = statvfs(idx->dir, &vfs) == 0 && (vfs.f_flag & ST_RDONLY);
    if (ro_fs && !(flags & FLM_INDEX_READONLY)) {
        rc = flm_error_set(err, FLM_EIO, "index %s: cannot write: %s is on a read-only file system",
                           idx->path, idx->dir);
        goto fail;
    }
    int oflags = (flags & FLM_INDEX_READONLY) ? SQLITE_OPEN_READONLY
                                              : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    /* A WAL database on read-only media cannot create its shared-memory file: open it as
     * immutable (nothing can change it there anyway). */
    int orc;
    if (ro_fs) {
        char *uri = flm_malloc(3 * strlen(idx->path) + 32), *q = uri;
        if (uri) {
            q += sprintf(q, "file:");
            for (const char *c = idx->path; *c; c++)
                q += (*c == '%' || *c == '?' || *c == '#') ? sprintf(q, "%%%02X", (unsigned char)*c)
                                                           : sprintf(q, "%c", *c);
            sprintf(q, "?immutable=1");
        }
        orc = uri ? sqlite3_open_v2(uri, &idx->db, oflags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI,
                                    NULL)
                  : SQLITE_NOMEM;
        flm_free(uri);
    } else {
        orc = sqlite3_open_v2(idx->path, &idx->db, oflags | SQLITE_OPEN_NOMUTEX, NULL);
    }
    if (orc != SQLITE_OK) {
        rc = idx->db ? db_error(idx, err, "open")
                     : flm_error_set(err, FLM_ENOMEM, "index %s: out of memory", idx->path);
        goto fail;
    }
    sqlite3_busy_timeout(idx->db, 30000);
    if ((rc = exec(idx, "PRAGMA foreign_keys = ON", err)) < 0)
        goto fail;
    if (!(flags & FLM_INDEX_READONLY)) {
        /* checked before switching to WAL, which would already write to a foreign database */
        int v = flm_index_schema_version(idx);
        if ((v >= 0 && (rc = check_version(idx, v, 1, err)) < 0) ||
            (rc = exec(idx, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL", err)) < 0 ||
            (rc = migrate(idx, err)) < 0)
            goto fail;
    } else if (flm_index_schema_version(idx) < 0) {
        rc = flm_error_set(err, FLM_EDB,
                           "index %s: cannot read: %s (if a job was stopped while writing it, "
                           "resuming the job recovers it)",
                           idx->path, sqlite3_errmsg(idx->db));
        goto fail;
    } else if ((rc = check_version(idx, flm_index_schema_version(idx), 0, err)) < 0) {
        goto fail;
    }
    *out = idx;
    return 0;
fail:
    flm_index_close(&idx);
    return rc;
}

void flm_index_close(flm_index **ip)
{
    flm_index *idx = *ip;
    if (!idx)
        return;
    sqlite3_close(idx->db);
    flm_free(idx->path);
    flm_free(idx->dir);
    flm_free(idx);
    *ip = NULL;
}

const char *flm_index_dir(const flm_index *idx)
{
    return idx->dir;
}

const char *flm_index_path(const flm_index *idx)
{
    return idx->path;
}

int flm_index_begin_run(flm_index *idx, const char *command, const char *recipe_json, int64_t seed,
                        const flm_profiles *p, int64_t *run_id, flm_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(idx, &st,
                     "INSERT INTO runs (started_at, tool_version, command, recipe, seed, "
                     "vocab_hash, codec_hash, model_hash, n_samples) VALUES (?,?,?,?,?,?,?,?,0)",
                     err);
    if (rc < 0)
        return rc;
    char now[32], h[3][17];
    now_iso(now, sizeof now);
    sqlite3_bind_text(st, 1, now, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, FLM_VERSION, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, command ? command : "", -1, SQLITE_TRANSIENT);
    if (recipe_json)
        sqlite3_bind_text(st, 4, recipe_json, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, seed);
    if (p) {
        idx->aud_empty = p->codec.aud_empty;
        idx->aud_pad = p->codec.aud_pad;
        hex64(h[0], p->vocab.hash);
        hex64(h[1], p->codec.hash);
        hex64(h[2], p->model.hash);
        for (int i = 0; i < 3; i++)
            sqlite3_bind_text(st, 6 + i, h[i], -1, SQLITE_TRANSIENT);
    }
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_error(idx, err, "recording the run");
    sqlite3_finalize(st);
    if (rc == 0)
        *run_id = sqlite3_last_insert_rowid(idx->db);
    return rc;
}

int flm_index_config_fingerprint(const char *config_json, char out[17], flm_error *err)
{
    json_error_t je;
    json_t *root = json_loads(config_json, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(root)) {
        json_decref(root);
        return flm_error_set(err, FLM_EFORMAT, "run configuration: not a JSON object (%s)",
                             root ? "another JSON value" : je.text);
    }
    json_object_del(root, "files");
    char *canon = json_dumps(root, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(root);
    if (!canon)
        return flm_error_set(err, FLM_ENOMEM, "out of memory");
    hex64(out, XXH3_64bits(canon, strlen(canon)));
    free(canon);
    return 0;
}

int flm_index_set_run_config(flm_index *idx, int64_t run_id, const char *config_json,
                             flm_error *err)
{
    char fp[17];
    sqlite3_stmt *st;
    int rc = flm_index_config_fingerprint(config_json, fp, err);
    if (rc < 0 ||
        (rc = prepare(idx, &st, "UPDATE runs SET config = ?, fingerprint = ? WHERE id = ?", err)) <
            0)
        return rc;
    sqlite3_bind_text(st, 1, config_json, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, fp, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, run_id);
    rc = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(idx->db) == 1
             ? 0
             : db_error(idx, err, "recording the run's configuration");
    sqlite3_finalize(st);
    return rc;
}

int flm_index_list_runs(flm_index *idx, flm_index_run_fn fn, void *user, flm_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(idx, &st, "SELECT id, command, config FROM runs ORDER BY id", err), step;
    if (rc < 0)
        return rc;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        fn(user, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
           (const char *)sqlite3_column_text(st, 2));
    rc = step == SQLITE_DONE ? 0 : db_error(idx, err, "reading the runs");
    sqlite3_finalize(st);
    return rc;
}

int flm_index_identity(flm_index *idx, const char *member, char *value, size_t size, flm_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(idx, &st,
                     "SELECT id, json_extract(config, '$.' || ?1) FROM runs WHERE "
                     "json_valid(config) AND json_type(config, '$.' || ?1) = 'text' ORDER BY id",
                     err),
        step;
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, member, -1, SQLITE_STATIC);
    int64_t first_run = 0;
    value[0] = 0;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 1);
        if (!first_run) {
            first_run = sqlite3_column_int64(st, 0);
            snprintf(value, size, "%s", v);
        } else if (strcmp(v, value) != 0) {
            rc = flm_error_set(err, FLM_EMISMATCH,
                               "index %s: run %lld has %s %s, run %lld has %s %s (one dataset "
                               "needs one %s)",
                               idx->path, (long long)first_run, member, value,
                               (long long)sqlite3_column_int64(st, 0), member, v, member);
        }
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_error(idx, err, "reading the runs");
    sqlite3_finalize(st);
    return rc;
}

/* The index keeps a sample's key/values as a JSON object (the "metadata" member). */
static char *meta_json(const flm_sample *s)
{
    return flm_sample_to_json(s, FLM_JSON_METADATA_ONLY);
}

int flm_index_add_shard(flm_index *idx, int64_t run_id, const char *rel_path, uint64_t file_size,
                        const flm_sample *const *samples, const flm_record_info *infos, size_t n,
                        const char *const *done_inputs, const char *const *done_paths,
                        size_t n_done, flm_error *err)
{
    sqlite3_stmt *sh = NULL, *sa = NULL, *ev = NULL, *in = NULL, *cnt = NULL;
    int rc = exec(idx, "BEGIN IMMEDIATE", err);
    if (rc < 0)
        return rc;
    if ((rc = prepare(idx, &sh,
                      "INSERT INTO shards (path, run_id, n_records, n_frames, file_size, "
                      "created_at) VALUES (?,?,?,?,?,?)",
                      err)) < 0 ||
        (rc = prepare(idx, &sa,
                      "INSERT INTO samples (sample_key, shard_id, record, n_frames, style, stage, "
                      "language, corpus, speakers, duration_s, checksum, metadata, n_monologue, "
                      "n_wait, n_speak, n_listen) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                      err)) < 0 ||
        (rc = prepare(idx, &ev,
                      "INSERT INTO events (sample_id, kind, frame, n_frames, value) "
                      "VALUES (?,?,?,?,?)",
                      err)) < 0 ||
        (rc = prepare(idx, &in,
                      "INSERT INTO inputs (key, path, status, run_id, updated_at, fingerprint) "
                      "VALUES (?1,?4,'done',?2,?3,(SELECT fingerprint FROM runs WHERE id = ?2)) "
                      "ON CONFLICT(key) DO UPDATE SET status='done', stage=NULL, error=NULL, "
                      "run_id=excluded.run_id, updated_at=excluded.updated_at, "
                      "fingerprint=excluded.fingerprint, path=coalesce(excluded.path, path)",
                      err)) < 0 ||
        (rc = prepare(idx, &cnt,
                      "UPDATE runs SET n_samples = coalesce(n_samples, 0) + ? WHERE id = ?", err)) <
            0)
        goto fail;
    char now[32];
    now_iso(now, sizeof now);
    int64_t frames = 0;
    for (size_t i = 0; i < n; i++)
        frames += samples[i]->n_frames;
    int64_t shard_id = 0;
    if (rel_path) {
        sqlite3_bind_text(sh, 1, rel_path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(sh, 2, run_id);
        sqlite3_bind_int64(sh, 3, (int64_t)n);
        sqlite3_bind_int64(sh, 4, frames);
        sqlite3_bind_int64(sh, 5, (int64_t)file_size);
        sqlite3_bind_text(sh, 6, now, -1, SQLITE_STATIC);
        if (sqlite3_step(sh) != SQLITE_DONE) {
            rc = db_error(idx, err, rel_path);
            goto fail;
        }
        shard_id = sqlite3_last_insert_rowid(idx->db);
    } else if (n > 0) {
        rc = flm_error_set(err, FLM_EINVAL, "index %s: samples without a shard", idx->path);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const flm_sample *s = samples[i];
        char ck[17];
        hex64(ck, infos[i].ucheck);
        char *meta = meta_json(s);
        if (!meta) {
            rc = flm_error_set(err, FLM_ENOMEM, "index %s: out of memory", idx->path);
            goto fail;
        }
        sqlite3_reset(sa);
        sqlite3_bind_text(sa, 1, s->id ? s->id : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(sa, 2, shard_id);
        sqlite3_bind_int64(sa, 3, (int64_t)i);
        sqlite3_bind_int64(sa, 4, s->n_frames);
        const char *strs[5] = {s->style, s->stage, s->language, s->corpus, s->speakers};
        for (int k = 0; k < 5; k++) {
            if (strs[k])
                sqlite3_bind_text(sa, 5 + k, strs[k], -1, SQLITE_STATIC);
            else
                sqlite3_bind_null(sa, 5 + k);
        }
        sqlite3_bind_double(sa, 10, s->duration_s);
        sqlite3_bind_text(sa, 11, ck, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(sa, 12, meta, -1, SQLITE_TRANSIENT);
        int64_t n_mono = 0, n_wait = 0, n_speak = 0, n_listen = 0;
        for (int32_t t = 0; t < s->n_frames; t++) {
            int c = FLM_CLS(s, FLM_CH_TEXT, t);
            n_mono += c == FLM_LOSS_MONOLOGUE;
            n_wait += c == FLM_LOSS_WAIT;
            n_speak += FLM_CLS(s, FLM_CH_SPEAK, t) == FLM_LOSS_SEMANTIC;
            int32_t l = FLM_TOK(s, FLM_CH_LISTEN, t);
            n_listen += l != idx->aud_empty && l != idx->aud_pad;
        }
        sqlite3_bind_int64(sa, 13, n_mono);
        sqlite3_bind_int64(sa, 14, n_wait);
        sqlite3_bind_int64(sa, 15, n_speak);
        sqlite3_bind_int64(sa, 16, n_listen);
        int step = sqlite3_step(sa);
        free(meta);
        if (step != SQLITE_DONE) {
            rc = db_error(idx, err, s->id ? s->id : "sample");
            goto fail;
        }
        int64_t sid = sqlite3_last_insert_rowid(idx->db);
        for (int32_t e = 0; e < s->n_events; e++) {
            sqlite3_reset(ev);
            sqlite3_bind_int64(ev, 1, sid);
            sqlite3_bind_text(ev, 2, s->events[e].kind, -1, SQLITE_STATIC);
            sqlite3_bind_int(ev, 3, s->events[e].frame);
            sqlite3_bind_int(ev, 4, s->events[e].n_frames);
            sqlite3_bind_double(ev, 5, s->events[e].value);
            if (sqlite3_step(ev) != SQLITE_DONE) {
                rc = db_error(idx, err, "event");
                goto fail;
            }
        }
    }
    for (size_t i = 0; i < n_done; i++) {
        sqlite3_reset(in);
        sqlite3_bind_text(in, 1, done_inputs[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(in, 2, run_id);
        sqlite3_bind_text(in, 3, now, -1, SQLITE_STATIC);
        if (done_paths && done_paths[i])
            sqlite3_bind_text(in, 4, done_paths[i], -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(in, 4);
        if (sqlite3_step(in) != SQLITE_DONE) {
            rc = db_error(idx, err, done_inputs[i]);
            goto fail;
        }
    }
    sqlite3_bind_int64(cnt, 1, (int64_t)n);
    sqlite3_bind_int64(cnt, 2, run_id);
    if (n > 0 && sqlite3_step(cnt) != SQLITE_DONE) {
        rc = db_error(idx, err, "counting the run's samples");
        goto fail;
    }
    sqlite3_finalize(sh);
    sqlite3_finalize(sa);
    sqlite3_finalize(ev);
    sqlite3_finalize(in);
    sqlite3_finalize(cnt);
    return exec(idx, "COMMIT", err);
fail:
    sqlite3_finalize(sh);
    sqlite3_finalize(sa);
    sqlite3_finalize(ev);
    sqlite3_finalize(in);
    sqlite3_finalize(cnt);
    sqlite3_exec(idx->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int flm_index_quarantine(flm_index *idx, int64_t run_id, const char *key, const char *path,
                         const char *stage, const char *error, flm_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(idx, &st,
                     "INSERT INTO inputs (key, path, status, stage, error, run_id, updated_at) "
                     "VALUES (?,?,'quarantined',?,?,?,?) ON CONFLICT(key) DO UPDATE SET "
                     "path=excluded.path, status='quarantined', stage=excluded.stage, "
                     "error=excluded.error, run_id=excluded.run_id, updated_at=excluded.updated_at",
                     err);
    if (rc < 0)
        return rc;
    char now[32];
    now_iso(now, sizeof now);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, stage, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, error, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, run_id);
    sqlite3_bind_text(st, 6, now, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_error(idx, err, key);
    sqlite3_finalize(st);
    return rc;
}

int flm_index_input_status(flm_index *idx, const char *key, flm_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(idx, &st, "SELECT status FROM inputs WHERE key = ?", err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        rc = strcmp((const char *)sqlite3_column_text(st, 0), "done") == 0 ? 1 : 2;
    else if (step != SQLITE_DONE)
        rc = db_error(idx, err, key);
    sqlite3_finalize(st);
    return rc;
}

int flm_index_input_info(flm_index *idx, const char *key, flm_index_input *info, flm_error *err)
{
    sqlite3_stmt *st;
    memset(info, 0, sizeof *info);
    int rc = prepare(idx, &st, "SELECT status, run_id, fingerprint, path FROM inputs WHERE key = ?",
                     err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        info->status = strcmp((const char *)sqlite3_column_text(st, 0), "done") == 0 ? 1 : 2;
        info->run_id = sqlite3_column_int64(st, 1);
        const char *fp = (const char *)sqlite3_column_text(st, 2);
        const char *path = (const char *)sqlite3_column_text(st, 3);
        snprintf(info->fingerprint, sizeof info->fingerprint, "%s", fp ? fp : "");
        snprintf(info->path, sizeof info->path, "%s", path ? path : "");
    } else if (step != SQLITE_DONE) {
        rc = db_error(idx, err, key);
    }
    sqlite3_finalize(st);
    return rc;
}

int flm_index_find_done(flm_index *idx, const char *prefix, char *key, size_t size, flm_error *err)
{
    size_t n = strlen(prefix);
    char *hi = flm_strdup(prefix);
    if (!hi)
        return flm_error_set(err, FLM_ENOMEM, "out of memory");
    /* keys starting with the prefix are a range of the primary key: one index lookup */
    while (n > 0 && (unsigned char)hi[n - 1] == 0xff)
        hi[--n] = 0;
    if (n > 0)
        hi[n - 1] = (char)((unsigned char)hi[n - 1] + 1);
    sqlite3_stmt *st;
    int rc = prepare(idx, &st,
                     n > 0 ? "SELECT key FROM inputs WHERE key >= ?1 AND key < ?2 AND "
                             "status = 'done' ORDER BY key LIMIT 1"
                           : "SELECT key FROM inputs WHERE key >= ?1 AND status = 'done' "
                             "ORDER BY key LIMIT 1",
                     err);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
        if (n > 0)
            sqlite3_bind_text(st, 2, hi, -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            snprintf(key, size, "%s", (const char *)sqlite3_column_text(st, 0));
            rc = 1;
        } else if (step != SQLITE_DONE) {
            rc = db_error(idx, err, prefix);
        }
        sqlite3_finalize(st);
    }
    flm_free(hi);
    return rc;
}

static int locate_row(flm_index *idx, sqlite3_stmt *st, char **shard_path, uint64_t *record,
                      const char *what, flm_error *err)
{
    int step = sqlite3_step(st);
    int rc;
    if (step == SQLITE_ROW) {
        *shard_path = flm_path_join(idx->dir, (const char *)sqlite3_column_text(st, 0));
        *record = (uint64_t)sqlite3_column_int64(st, 1);
        rc = *shard_path ? 0 : flm_error_set(err, FLM_ENOMEM, "out of memory");
    } else if (step == SQLITE_DONE) {
        rc = flm_error_set(err, FLM_ENOTFOUND, "index %s: no sample %s", idx->path, what);
    } else {
        rc = db_error(idx, err, what);
    }
    sqlite3_finalize(st);
    return rc;
}

int flm_index_locate(flm_index *idx, const char *key, char **shard_path, uint64_t *record,
                     flm_error *err)
{
    sqlite3_stmt *st;
    *shard_path = NULL;
    int rc = prepare(idx, &st,
                     "SELECT sh.path, s.record FROM samples s JOIN shards sh ON sh.id = s.shard_id "
                     "WHERE s.sample_key = ?",
                     err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    return locate_row(idx, st, shard_path, record, key, err);
}

int64_t flm_index_count_samples(flm_index *idx, flm_error *err)
{
    sqlite3_stmt *st;
    int64_t n = prepare(idx, &st, "SELECT count(*) FROM samples", err);
    if (n < 0)
        return n;
    n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0)
                                       : db_error(idx, err, "counting samples");
    sqlite3_finalize(st);
    return n;
}

int flm_index_each_shard(flm_index *idx, flm_index_shard_fn fn, void *user, flm_error *err)
{
    sqlite3_stmt *st;
    int step = SQLITE_DONE, rc = prepare(idx, &st, "SELECT id, path FROM shards ORDER BY id", err);
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = fn(user, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1));
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_error(idx, err, "reading the shards");
    sqlite3_finalize(st);
    return rc;
}

int flm_index_each_sample(flm_index *idx, flm_index_sample_fn fn, void *user, flm_error *err)
{
    sqlite3_stmt *st;
    int step = SQLITE_DONE;
    int rc = prepare(idx, &st,
                     "SELECT sample_key, shard_id, record, coalesce(corpus, ''), n_frames "
                     "FROM samples ORDER BY id",
                     err);
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = fn(user, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
                sqlite3_column_int64(st, 2), (const char *)sqlite3_column_text(st, 3),
                sqlite3_column_int64(st, 4));
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_error(idx, err, "reading the samples");
    sqlite3_finalize(st);
    return rc;
}

int flm_index_stats(flm_index *idx, const char *group_by, flm_index_stats_fn fn, void *user,
                    flm_error *err)
{
    static const char *allowed[] = {"corpus", "language", "style", "stage"};
    char sql[256];
    if (group_by) {
        int ok = 0;
        for (size_t i = 0; i < 4; i++)
            ok |= strcmp(group_by, allowed[i]) == 0;
        if (!ok)
            return flm_error_set(err, FLM_EINVAL,
                                 "cannot group by \"%s\" (corpus, language, style or stage)",
                                 group_by);
        snprintf(sql, sizeof sql,
                 "SELECT coalesce(%s, '-'), count(*), sum(n_frames), sum(duration_s) / 3600.0 "
                 "FROM samples GROUP BY 1 ORDER BY 4 DESC, 1",
                 group_by);
    } else {
        snprintf(sql, sizeof sql,
                 "SELECT NULL, count(*), coalesce(sum(n_frames), 0), "
                 "coalesce(sum(duration_s), 0) / 3600.0 FROM samples");
    }
    sqlite3_stmt *st;
    int rc = prepare(idx, &st, sql, err);
    if (rc < 0)
        return rc;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        fn(user, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
           sqlite3_column_int64(st, 2), sqlite3_column_double(st, 3));
    rc = step == SQLITE_DONE ? 0 : db_error(idx, err, "stats");
    sqlite3_finalize(st);
    return rc;
}

/* Runs sql (one row expected) and stores its columns as doubles into out[0..n). */
static int one_row(flm_index *idx, const char *sql, double *out, int n, flm_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(idx, &st, sql, err);
    if (rc < 0)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        for (int i = 0; i < n; i++)
            out[i] = sqlite3_column_double(st, i);
    else
        rc = db_error(idx, err, "dialog stats");
    sqlite3_finalize(st);
    return rc;
}

/* After SQLite's JSON functions failed on the samples table (they fail on the whole table for
 * one row): names the first sample whose metadata is not JSON; rc unchanged when none is. */
static int name_bad_metadata(flm_index *idx, int rc, flm_error *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(idx->db,
                           "SELECT sample_key FROM samples WHERE NOT json_valid(metadata) "
                           "ORDER BY id LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        rc = flm_error_set(err, FLM_ECORRUPT,
                           "index %s: sample %s: metadata is not JSON (flm index check lists "
                           "every such sample)",
                           idx->path, (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return rc;
}

int flm_index_next_shard(flm_index *idx, int64_t *n, flm_error *err)
{
    double count = 0;
    sqlite3_stmt *st;
    int rc = one_row(idx, "SELECT count(*) FROM shards", &count, 1, err);
    if (rc < 0 || (rc = prepare(idx, &st, "SELECT 1 FROM shards WHERE path = ?1", err)) < 0)
        return rc;
    int64_t k = (int64_t)count;
    for (;; k++) { /* count(*) is free unless shards were removed from the middle */
        char path[64];
        snprintf(path, sizeof path, "%s/%06lld%s", FLM_SHARDS_DIR, (long long)k, FLM_SHARD_SUFFIX);
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, path, -1, SQLITE_TRANSIENT);
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = db_error(idx, err, "finding a free shard name");
            break;
        }
    }
    sqlite3_finalize(st);
    *n = k;
    return rc;
}

int flm_index_dialog_stats(flm_index *idx, flm_index_dialog_report *out, flm_error *err)
{
    memset(out, 0, sizeof *out);
    double v[8] = {0};
    int rc = one_row(
        idx,
        "SELECT count(*), coalesce(sum(json_extract(metadata, '$.\"dialog.eligible\"')), 0), "
        "coalesce(sum(json_extract(metadata, '$.\"dialog.dropped_tokens\"')), 0) "
        "FROM samples WHERE json_extract(metadata, '$.\"dialog.turns\"') IS NOT NULL",
        v, 3, err);
    if (rc < 0)
        return name_bad_metadata(idx, rc, err);
    out->n_dialogs = (int64_t)v[0];
    out->n_eligible = (int64_t)v[1];
    out->n_dropped_tokens = (int64_t)v[2];
    if ((rc = one_row(idx,
                      "SELECT coalesce(sum(e.kind = 'interrupt'), 0), "
                      "coalesce(sum(e.kind = 'backchannel'), 0), coalesce(sum(e.kind = 'cut'), 0), "
                      "coalesce(avg(CASE WHEN e.kind IN ('interrupt', 'backchannel') THEN "
                      "e.n_frames * s.duration_s / s.n_frames END), 0), "
                      "coalesce(sum(e.kind = 'overlap'), 0) "
                      "FROM events e JOIN samples s ON s.id = e.sample_id "
                      "WHERE e.kind IN ('interrupt', 'backchannel', 'cut', 'overlap') "
                      "AND s.n_frames > 0",
                      v, 5, err)) < 0)
        return rc;
    out->n_interrupts = (int64_t)v[0];
    out->n_backchannels = (int64_t)v[1];
    out->n_cuts = (int64_t)v[2];
    out->mean_overlap_s = v[3];
    out->n_overlaps = (int64_t)v[4];
    if (out->n_eligible > 0)
        out->interruption_rate =
            (double)(out->n_interrupts + out->n_backchannels) / (double)out->n_eligible;
    if ((rc = one_row(
             idx,
             "SELECT count(*), coalesce(sum(json_extract(metadata, '$.\"aug.noise\"') = 1), 0), "
             "coalesce(sum(json_extract(metadata, '$.\"aug.gain\"') = 1), 0), "
             "coalesce(sum(json_extract(metadata, '$.\"aug.echo\"') = 1), 0), "
             "coalesce(avg(CASE WHEN json_extract(metadata, '$.\"aug.echo\"') = 1 THEN "
             "json_extract(metadata, '$.\"aug.echo_gain\"') END), 0), "
             "coalesce(avg(CASE WHEN json_extract(metadata, '$.\"aug.echo\"') = 1 THEN "
             "json_extract(metadata, '$.\"aug.echo_delay_s\"') END), 0) "
             "FROM samples WHERE json_extract(metadata, '$.\"aug.noise\"') IS NOT NULL",
             v, 6, err)) < 0)
        return name_bad_metadata(idx, rc, err);
    out->n_augmented = (int64_t)v[0];
    out->n_noise = (int64_t)v[1];
    out->n_gain = (int64_t)v[2];
    out->n_echo = (int64_t)v[3];
    out->mean_echo_gain = v[4];
    out->mean_echo_delay_s = v[5];
    sqlite3_stmt *st;
    if ((rc = prepare(idx, &st,
                      "SELECT value, count(*) FROM events WHERE kind = 'interrupt' GROUP BY value "
                      "ORDER BY value LIMIT 16",
                      err)) < 0)
        return rc;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW && out->n_reactions < FLM_INDEX_MAX_REACTIONS) {
        out->reaction_s[out->n_reactions] = sqlite3_column_double(st, 0);
        out->reaction_count[out->n_reactions++] = sqlite3_column_int64(st, 1);
    }
    rc = step == SQLITE_DONE || step == SQLITE_ROW ? 0 : db_error(idx, err, "dialog stats");
    sqlite3_finalize(st);
    return rc;
}

int flm_index_list_quarantine(flm_index *idx, flm_index_quarantine_fn fn, void *user,
                              flm_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(idx, &st,
                     "SELECT key, path, stage, error FROM inputs WHERE status = 'quarantined' "
                     "ORDER BY key",
                     err);
    if (rc < 0)
        return rc;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        fn(user, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
           (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3));
    rc = step == SQLITE_DONE ? 0 : db_error(idx, err, "quarantine");
    sqlite3_finalize(st);
    return rc;
}

int flm_index_query(flm_index *idx, const char *sql, flm_index_row_fn fn, void *user,
                    flm_error *err)
{
    sqlite3_stmt *st;
    const char *tail = NULL;
    if (sqlite3_prepare_v2(idx->db, sql, -1, &st, &tail) != SQLITE_OK)
        return db_error(idx, err, "query");
    while (tail && (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == ';'))
        tail++;
    if (!st || !sqlite3_stmt_readonly(st) || (tail && *tail)) {
        sqlite3_finalize(st);
        return flm_error_set(err, FLM_EINVAL,
                             "index %s: only one read-only statement (SELECT ...) is allowed",
                             idx->path);
    }
    int n = sqlite3_column_count(st), step, rc = 0;
    const char **names = flm_calloc((size_t)n + 1, sizeof *names);
    const char **vals = flm_calloc((size_t)n + 1, sizeof *vals);
    if (!names || !vals) {
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++)
        names[i] = sqlite3_column_name(st, i);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; i < n; i++)
            vals[i] = (const char *)sqlite3_column_text(st, i);
        fn(user, n, names, vals);
    }
    if (step != SQLITE_DONE)
        rc = db_error(idx, err, "query");
done:
    flm_free(names);
    flm_free(vals);
    sqlite3_finalize(st);
    return rc;
}

/* ---- check ----------------------------------------------------------------------------- */

typedef struct checker {
    flm_index_problem_fn fn;
    void *user;
    int64_t n_errors;
} checker;

static void problem(checker *c, int severity, const char *fmt, ...) FLM_PRINTF(3, 4);
static void problem(checker *c, int severity, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (severity)
        c->n_errors++;
    if (c->fn)
        c->fn(c->user, severity, msg);
}

/* Whether the last failure on db says its file is damaged (rather than short of memory or
 * locked). */
static int is_corrupt(sqlite3 *db)
{
    int code = sqlite3_errcode(db) & 0xff;
    return code == SQLITE_CORRUPT || code == SQLITE_NOTADB;
}

/* An SQLite failure met while checking: damage is a finding, reported as database corruption,
 * and the check goes on (0); anything else ends the check (a negative code in err). */
static int db_finding(flm_index *idx, checker *c, const char *what, flm_error *err)
{
    if (!is_corrupt(idx->db))
        return db_error(idx, err, what);
    problem(c, 1, "index %s: database corruption: %s: %s", idx->path, what,
            sqlite3_errmsg(idx->db));
    return 0;
}

/* SQLite's own check of the file (b-tree pages, cells, page lists, NOT NULL): without it a
 * damaged page shows up only as rows that seem to be missing, or not at all. */
static int check_integrity(flm_index *idx, checker *c, flm_error *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(idx->db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK)
        return db_finding(idx, c, "PRAGMA quick_check", err);
    int step, rc = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *line = (const char *)sqlite3_column_text(st, 0);
        if (!line || strcmp(line, "ok") == 0)
            continue;
        /* a row holds the findings of one page, one per line, after a "*** in database main
         * ***" header line on the first */
        for (const char *end; *line; line = *end ? end + 1 : end) {
            end = strchr(line, '\n');
            end = end ? end : line + strlen(line);
            if (strncmp(line, "*** in database ", 16) != 0 && end > line)
                problem(c, 1, "index %s: database corruption: %.*s", idx->path, (int)(end - line),
                        line);
        }
    }
    if (step != SQLITE_DONE)
        rc = db_finding(idx, c, "PRAGMA quick_check", err);
    sqlite3_finalize(st);
    return rc;
}

/* The schema this build's migrations create, in a private in-memory database: the check
 * follows every migration added without a list of its own to keep up to date. */
static int expected_schema(sqlite3 **out, flm_error *err)
{
    sqlite3 *ref = NULL;
    int rc = 0;
    if (sqlite3_open_v2(":memory:", &ref, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK)
        rc = ref ? flm_error_set(err, FLM_EDB, "in-memory database: %s", sqlite3_errmsg(ref))
                 : flm_error_set(err, FLM_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < flm_index_n_migrations; i++) {
        char *msg = NULL;
        if (sqlite3_exec(ref, flm_index_migrations[i], NULL, NULL, &msg) != SQLITE_OK)
            rc = flm_error_set(err, FLM_EDB, "index schema: migration %zu of this build: %s", i + 1,
                               msg ? msg : sqlite3_errmsg(ref));
        sqlite3_free(msg);
    }
    if (rc < 0)
        sqlite3_close(ref);
    else
        *out = ref;
    return rc;
}

/* user_version is the number of migrations of this build, and every table, column and index
 * they create exists. */
static int check_schema(flm_index *idx, checker *c, flm_error *err)
{
    int v = flm_index_schema_version(idx);
    if (v != (int)flm_index_n_migrations)
        problem(c, 1, "index %s: schema version (user_version) %d, this build expects %d",
                idx->path, v, (int)flm_index_n_migrations);
    sqlite3 *ref = NULL;
    sqlite3_stmt *objs = NULL, *cols = NULL, *has = NULL, *has_col = NULL;
    int rc = expected_schema(&ref, err), step = SQLITE_DONE;
    if (rc < 0)
        return rc;
    if (sqlite3_prepare_v2(ref,
                           "SELECT type, name, tbl_name FROM sqlite_master WHERE type IN ('table', "
                           "'index') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                           "ORDER BY type = 'index', rowid",
                           -1, &objs, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(ref, "SELECT name FROM pragma_table_info(?)", -1, &cols, NULL) !=
            SQLITE_OK) {
        rc = flm_error_set(err, FLM_EDB, "index schema: %s", sqlite3_errmsg(ref));
        goto done;
    }
    if (sqlite3_prepare_v2(idx->db, "SELECT 1 FROM sqlite_master WHERE type = ? AND name = ?", -1,
                           &has, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(idx->db, "SELECT 1 FROM pragma_table_info(?) WHERE name = ?", -1,
                           &has_col, NULL) != SQLITE_OK) {
        rc = db_finding(idx, c, "reading the schema", err);
        goto done;
    }
    while ((step = sqlite3_step(objs)) == SQLITE_ROW) {
        const char *type = (const char *)sqlite3_column_text(objs, 0);
        const char *name = (const char *)sqlite3_column_text(objs, 1);
        const char *table = (const char *)sqlite3_column_text(objs, 2);
        int is_table = strcmp(type, "table") == 0, found;
        sqlite3_reset(has);
        sqlite3_bind_text(has, 1, "table", -1, SQLITE_STATIC);
        sqlite3_bind_text(has, 2, table, -1, SQLITE_STATIC);
        if ((found = sqlite3_step(has)) == SQLITE_ROW && !is_table) {
            sqlite3_reset(has);
            sqlite3_bind_text(has, 1, type, -1, SQLITE_STATIC);
            sqlite3_bind_text(has, 2, name, -1, SQLITE_STATIC);
            found = sqlite3_step(has);
        } else if (found == SQLITE_DONE && !is_table) {
            continue; /* the index of a missing table: the table is reported */
        }
        if (found == SQLITE_DONE) {
            problem(c, 1, "index %s: schema: %s \"%s\" is missing (schema version %d creates it)",
                    idx->path, type, name, (int)flm_index_n_migrations);
            continue;
        }
        if (found != SQLITE_ROW) {
            rc = db_finding(idx, c, "reading the schema", err);
            goto done;
        }
        sqlite3_reset(cols);
        sqlite3_bind_text(cols, 1, name, -1, SQLITE_STATIC);
        while (is_table && sqlite3_step(cols) == SQLITE_ROW) {
            const char *col = (const char *)sqlite3_column_text(cols, 0);
            sqlite3_reset(has_col);
            sqlite3_bind_text(has_col, 1, name, -1, SQLITE_STATIC);
            sqlite3_bind_text(has_col, 2, col, -1, SQLITE_STATIC);
            if ((found = sqlite3_step(has_col)) == SQLITE_DONE)
                problem(c, 1,
                        "index %s: schema: table \"%s\" has no column \"%s\" (schema version %d "
                        "creates it)",
                        idx->path, name, col, (int)flm_index_n_migrations);
            else if (found != SQLITE_ROW) {
                rc = db_finding(idx, c, "reading the schema", err);
                goto done;
            }
        }
    }
    if (step != SQLITE_DONE)
        rc = flm_error_set(err, FLM_EDB, "index schema: %s", sqlite3_errmsg(ref));
done:
    sqlite3_finalize(objs);
    sqlite3_finalize(cols);
    sqlite3_finalize(has);
    sqlite3_finalize(has_col);
    sqlite3_close(ref);
    return rc;
}

/* Rows that refer to rows that do not exist (a sample whose shard row was deleted by hand, with
 * foreign keys off, is otherwise never checked). */
static int check_references(flm_index *idx, checker *c, flm_error *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(idx->db,
                           "SELECT \"table\", parent, count(*), min(rowid) FROM "
                           "pragma_foreign_key_check GROUP BY 1, 2 ORDER BY 1, 2",
                           -1, &st, NULL) != SQLITE_OK)
        return db_finding(idx, c, "PRAGMA foreign_key_check", err);
    int step, rc = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        problem(c, 1,
                "index %s: %lld row(s) of %s refer to rows of %s that do not exist (the first: "
                "rowid %lld)",
                idx->path, (long long)sqlite3_column_int64(st, 2),
                (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
                (long long)sqlite3_column_int64(st, 3));
    if (step != SQLITE_DONE)
        rc = db_finding(idx, c, "PRAGMA foreign_key_check", err);
    sqlite3_finalize(st);
    return rc;
}

/* Every sample's metadata is a JSON object (stats, reports and users' queries read it with
 * SQLite's JSON functions, which fail on the whole table for one bad row). */
static int check_metadata(flm_index *idx, checker *c, int schema_ok, flm_error *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(idx->db, "SELECT sample_key, metadata FROM samples ORDER BY id", -1, &st,
                           NULL) != SQLITE_OK)
        return schema_ok ? db_finding(idx, c, "reading the metadata", err) : 0;
    int step, rc = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 0);
        const char *meta = (const char *)sqlite3_column_text(st, 1);
        size_t size = (size_t)sqlite3_column_bytes(st, 1);
        key = key ? key : "(null)";
        if (!meta) {
            problem(c, 1, "sample %s: metadata is NULL, not a JSON object", key);
            continue;
        }
        json_error_t je;
        json_t *j = json_loadb(meta, size,
                               JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL |
                                   JSON_ALLOW_NUL,
                               &je);
        if (!j && json_error_code(&je) == json_error_out_of_memory) {
            rc = flm_error_set(err, FLM_ENOMEM, "index %s: out of memory", idx->path);
            break;
        }
        if (!j)
            problem(c, 1, "sample %s: metadata is not JSON: %s (line %d, column %d)", key, je.text,
                    je.line, je.column);
        else if (!json_is_object(j))
            problem(c, 1, "sample %s: metadata is not a JSON object: %.40s%s", key, meta,
                    size > 40 ? "..." : "");
        json_decref(j);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_finding(idx, c, "reading the metadata", err);
    sqlite3_finalize(st);
    return rc;
}

static void check_shard(flm_index *idx, checker *c, int64_t shard_id, const char *rel,
                        int64_t n_records, int64_t file_size, sqlite3_stmt *samples)
{
    char *path = flm_path_join(idx->dir, rel ? rel : "");
    if (!path) {
        problem(c, 1, "shard %s: out of memory", rel ? rel : "");
        return;
    }
    flm_error e = {0};
    flm_shard_reader *r = NULL;
    if (flm_shard_reader_open(&r, path, &e) < 0) {
        problem(c, 1, "%s", e.msg);
        flm_free(path);
        return;
    }
    uint64_t n = flm_shard_reader_count(r);
    if ((int64_t)n != n_records)
        problem(c, 1, "shard %s: holds %llu records, the index says %lld", path,
                (unsigned long long)n, (long long)n_records);
    if ((int64_t)flm_shard_reader_file_size(r) != file_size)
        problem(c, 1, "shard %s: %llu bytes, the index says %lld (modified after indexing?)", path,
                (unsigned long long)flm_shard_reader_file_size(r), (long long)file_size);
    uint8_t *seen = flm_calloc(n ? n : 1, 1);
    sqlite3_reset(samples);
    sqlite3_bind_int64(samples, 1, shard_id);
    int step;
    while ((step = sqlite3_step(samples)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(samples, 0);
        int64_t rec = sqlite3_column_int64(samples, 1);
        int64_t frames = sqlite3_column_int64(samples, 2);
        const char *ck = (const char *)sqlite3_column_text(samples, 3);
        key = key ? key : "(null)";
        if (rec < 0 || (uint64_t)rec >= n) {
            problem(c, 1, "sample %s: record %lld is beyond the %llu records of shard %s", key,
                    (long long)rec, (unsigned long long)n, path);
            continue;
        }
        if (seen)
            seen[rec] = 1;
        flm_record_view v;
        if (flm_shard_reader_view(r, (uint64_t)rec, &v, &e) < 0) {
            problem(c, 1, "%s (sample %s)", e.msg, key);
            continue;
        }
        char hex[17];
        hex64(hex, flm_shard_reader_info(r, (uint64_t)rec)->ucheck);
        if (!ck || strcmp(hex, ck) != 0)
            problem(c, 1, "shard %s: record %lld: checksum %s, the index says %s (sample %s)", path,
                    (long long)rec, hex, ck ? ck : "NULL", key);
        if ((int64_t)v.n_frames != frames)
            problem(c, 1, "shard %s: record %lld: %u frames, the index says %lld", path,
                    (long long)rec, v.n_frames, (long long)frames);
        if (!v.id || strcmp(v.id, key) != 0)
            problem(c, 1, "shard %s: record %lld: sample id \"%s\", the index says \"%s\"", path,
                    (long long)rec, v.id ? v.id : "", key);
    }
    if (step != SQLITE_DONE) {
        problem(c, 1, "index %s: %sreading the samples of shard %s: %s", idx->path,
                is_corrupt(idx->db) ? "database corruption: " : "", path, sqlite3_errmsg(idx->db));
        flm_free(seen); /* the records after the failure are unknown, not missing */
        seen = NULL;
    }
    for (uint64_t i = 0; seen && i < n; i++) {
        if (seen[i])
            continue;
        flm_record_view v;
        if (flm_shard_reader_view(r, i, &v, &e) < 0)
            problem(c, 1, "%s", e.msg);
        else
            problem(c, 1, "shard %s: record %llu (sample %s) is not in the index", path,
                    (unsigned long long)i, v.id ? v.id : "?");
    }
    flm_free(seen);
    flm_shard_reader_close(&r);
    flm_free(path);
}

/* Files in DIR/shards that the index does not list: leftovers of killed writers. */
static void check_orphans(flm_index *idx, checker *c, sqlite3_stmt *known)
{
    char *dir = flm_path_join(idx->dir, FLM_SHARDS_DIR);
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d) {
        flm_free(dir);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *name = de->d_name;
        if (name[0] == '.')
            continue;
        char rel[PATH_MAX];
        snprintf(rel, sizeof rel, "%s/%s", FLM_SHARDS_DIR, name);
        if (strstr(name, FLM_SHARD_SUFFIX ".tmp-")) {
            problem(c, 0, "%s/%s: temporary file of an unfinished writer (safe to delete)", dir,
                    name);
            continue;
        }
        size_t len = strlen(name), sl = strlen(FLM_SHARD_SUFFIX);
        if (len <= sl || strcmp(name + len - sl, FLM_SHARD_SUFFIX) != 0)
            continue;
        sqlite3_reset(known);
        sqlite3_bind_text(known, 1, rel, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(known) != SQLITE_ROW)
            problem(c, 0,
                    "%s/%s: complete shard not in the index (its job stopped before registering "
                    "it; a resumed job rewrites it)",
                    dir, name);
    }
    closedir(d);
    flm_free(dir);
}

/* What the index is complete for (schema 3): each run's registered sample count, and each
 * merge's input total, against what it holds. */
static int check_counts(flm_index *idx, checker *c, flm_error *err)
{
    sqlite3_stmt *runs = NULL, *merges = NULL;
    int rc = prepare(idx, &runs,
                     "SELECT r.id, r.n_samples, (SELECT count(*) FROM samples s JOIN shards h ON "
                     "h.id = s.shard_id WHERE h.run_id = r.id) FROM runs r WHERE r.n_samples "
                     "IS NOT NULL ORDER BY r.id",
                     err);
    if (rc == 0)
        rc = prepare(idx, &merges,
                     "SELECT id, n_samples, json_array_length(inputs), (SELECT count(*) FROM "
                     "samples) FROM merges ORDER BY id",
                     err);
    while (rc == 0 && sqlite3_step(runs) == SQLITE_ROW) {
        int64_t want = sqlite3_column_int64(runs, 1), held = sqlite3_column_int64(runs, 2);
        if (held != want)
            problem(c, 1,
                    "index %s: run %lld registered %lld samples, the index holds %lld of them "
                    "(rows removed or added behind its back?)",
                    idx->path, (long long)sqlite3_column_int64(runs, 0), (long long)want,
                    (long long)held);
    }
    while (rc == 0 && sqlite3_step(merges) == SQLITE_ROW) {
        int64_t want = sqlite3_column_int64(merges, 1), held = sqlite3_column_int64(merges, 3);
        if (held < want)
            problem(c, 1,
                    "index %s: holds %lld samples, merge %lld of %lld inputs recorded %lld: "
                    "incomplete (a merge stopped half way, or rows removed)",
                    idx->path, (long long)held, (long long)sqlite3_column_int64(merges, 0),
                    (long long)sqlite3_column_int64(merges, 2), (long long)want);
    }
    sqlite3_finalize(runs);
    sqlite3_finalize(merges);
    return rc;
}

int flm_index_check(flm_index *idx, flm_index_problem_fn fn, flm_index_progress_fn progress,
                    void *user, int64_t *n_errors, flm_error *err)
{
    checker c = {fn, user, 0};
    sqlite3_stmt *sh = NULL, *sa = NULL, *known = NULL, *cnt = NULL;
    int rc;
    if ((rc = check_integrity(idx, &c, err)) < 0)
        return rc;
    int64_t before = c.n_errors;
    if ((rc = check_schema(idx, &c, err)) < 0)
        return rc;
    int schema_ok = c.n_errors == before;
    if ((schema_ok && (rc = check_references(idx, &c, err)) < 0) ||
        (rc = check_metadata(idx, &c, schema_ok, err)) < 0)
        return rc;
    if ((rc = prepare(idx, &sh, "SELECT id, path, n_records, file_size FROM shards ORDER BY id",
                      err)) < 0 ||
        (rc = prepare(idx, &sa,
                      "SELECT sample_key, record, n_frames, checksum FROM samples "
                      "WHERE shard_id = ? ORDER BY record",
                      err)) < 0 ||
        (rc = prepare(idx, &known, "SELECT 1 FROM shards WHERE path = ?", err)) < 0 ||
        (rc = prepare(idx, &cnt, "SELECT count(*) FROM shards", err)) < 0) {
        /* a table or column is missing (reported above) or the schema is damaged */
        if (!schema_ok || is_corrupt(idx->db)) {
            problem(&c, 1, "index %s: %sthe records were not checked against the shards: %s",
                    idx->path, is_corrupt(idx->db) ? "database corruption: " : "",
                    sqlite3_errmsg(idx->db));
            rc = 0;
        }
        goto done;
    }
    int64_t total = sqlite3_step(cnt) == SQLITE_ROW ? sqlite3_column_int64(cnt, 0) : 0, done = 0;
    int step;
    while ((step = sqlite3_step(sh)) == SQLITE_ROW) {
        check_shard(idx, &c, sqlite3_column_int64(sh, 0), (const char *)sqlite3_column_text(sh, 1),
                    sqlite3_column_int64(sh, 2), sqlite3_column_int64(sh, 3), sa);
        if (progress)
            progress(user, ++done, total);
    }
    if (step != SQLITE_DONE && (rc = db_finding(idx, &c, "reading the shards", err)) < 0)
        goto done;
    check_orphans(idx, &c, known);
    if (schema_ok)
        rc = check_counts(idx, &c, err);
done:
    if (rc == 0)
        *n_errors = c.n_errors;
    sqlite3_finalize(sh);
    sqlite3_finalize(sa);
    sqlite3_finalize(known);
    sqlite3_finalize(cnt);
    return rc;
}

/* ---- merge ----------------------------------------------------------------------------- */

/* Relative path from directory `from` (absolute, canonical) to `to` (absolute, canonical). */
static void relpath(const char *from, const char *to, char *out, size_t n)
{
    size_t common = 0, i = 0;
    while (from[i] && from[i] == to[i]) {
        if (from[i] == '/')
            common = i;
        i++;
    }
    if (!from[i] && (to[i] == '/' || !to[i]))
        common = i;
    if (strcmp(from, "/") == 0)
        common = 0;
    size_t len = 0;
    out[0] = 0;
    for (const char *p = from + common; *p; p++)
        if (*p == '/')
            len += (size_t)snprintf(out + len, n > len ? n - len : 0, "../");
    const char *rest = to + common + (to[common] == '/');
    snprintf(out + len, n > len ? n - len : 0, "%s", rest);
}

typedef struct merge_ctx {
    char from[PATH_MAX]; /* canonical output directory */
    char in_dir[PATH_MAX];
} merge_ctx;

static void sql_relpath(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    merge_ctx *m = sqlite3_user_data(ctx);
    const char *p = (const char *)sqlite3_value_text(argv[0]);
    if (!p) {
        sqlite3_result_null(ctx);
        return;
    }
    char abs[2 * PATH_MAX], canon[PATH_MAX], out[2 * PATH_MAX];
    if (p[0] == '/')
        snprintf(abs, sizeof abs, "%s", p);
    else
        snprintf(abs, sizeof abs, "%s/%s", m->in_dir, p);
    if (!realpath(abs, canon)) /* shard missing: keep a lexical path; check will report it */
        snprintf(canon, sizeof canon, "%s", abs);
    relpath(m->from, canon, out, sizeof out);
    sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
}

/* Removes path and its -wal, -shm files. */
static void unlink_db(const char *path)
{
    size_t n = strlen(path) + 8;
    char *side = flm_malloc(n);
    for (int i = 0; side && i < 2; i++) {
        snprintf(side, n, "%s%s", path, i ? "-shm" : "-wal");
        unlink(side);
    }
    flm_free(side);
    unlink(path);
}

/* What the inputs hold together, checked before anything is written: readable, one codec and
 * one tokenizer across all of them (FLM_INDEX_IDENTITIES). */
static int merge_inputs_check(const char *const *inputs, size_t n_inputs, int64_t *n_samples,
                              flm_error *err)
{
    static const char *const members[] = FLM_INDEX_IDENTITIES;
    char first[2][128] = {"", ""}, from[2][PATH_MAX];
    *n_samples = 0;
    for (size_t k = 0; k < n_inputs; k++) {
        flm_index *in = NULL;
        int rc = flm_index_open(&in, inputs[k], FLM_INDEX_READONLY, err);
        int64_t n = rc < 0 ? -1 : flm_index_count_samples(in, err);
        if (rc == 0 && n < 0)
            rc = (int)n;
        for (int m = 0; rc == 0 && m < 2; m++) {
            char v[128];
            if ((rc = flm_index_identity(in, members[m], v, sizeof v, err)) < 0 || !v[0])
                continue;
            if (!first[m][0]) {
                snprintf(first[m], sizeof first[m], "%s", v);
                snprintf(from[m], sizeof from[m], "%s", in->path);
            } else if (strcmp(first[m], v) != 0) {
                rc = flm_error_set(err, FLM_EMISMATCH,
                                   "%s was packed with %s %s, %s with %s %s: one dataset needs "
                                   "one %s (merge refuses to mix them)",
                                   from[m], members[m], first[m], in->path, members[m], v,
                                   members[m]);
            }
        }
        flm_index_close(&in);
        if (rc < 0)
            return rc;
        *n_samples += n;
    }
    return 0;
}

/* Copies one attached input ("src") into the index being merged, in one transaction. */
static int merge_one(flm_index *idx, const char *in_path, flm_error *err)
{
    sqlite3_stmt *dup = NULL;
    int rc = prepare(idx, &dup,
                     "SELECT s.sample_key FROM src.samples s JOIN main.samples m "
                     "ON m.sample_key = s.sample_key LIMIT 1",
                     err);
    if (rc == 0 && sqlite3_step(dup) == SQLITE_ROW)
        rc = flm_error_set(err, FLM_EMISMATCH,
                           "%s: sample \"%s\" is also in an earlier input; merge refuses "
                           "duplicate sample keys",
                           in_path, (const char *)sqlite3_column_text(dup, 0));
    sqlite3_finalize(dup);
    if (rc == 0)
        rc = exec(idx,
                  "BEGIN IMMEDIATE;"
                  "CREATE TEMP TABLE off AS SELECT "
                  " (SELECT coalesce(max(id),0) FROM main.runs) AS r,"
                  " (SELECT coalesce(max(id),0) FROM main.shards) AS sh,"
                  " (SELECT coalesce(max(id),0) FROM main.samples) AS sa,"
                  " (SELECT coalesce(max(id),0) FROM main.merges) AS me;"
                  "INSERT INTO main.runs SELECT id + (SELECT r FROM off), started_at, "
                  " tool_version, command, recipe, seed, vocab_hash, codec_hash, model_hash, "
                  " n_samples, config, fingerprint FROM src.runs;"
                  "INSERT INTO main.shards SELECT id + (SELECT sh FROM off), flm_relpath(path),"
                  " run_id + (SELECT r FROM off), n_records, n_frames, file_size, created_at "
                  " FROM src.shards;"
                  "INSERT INTO main.samples SELECT id + (SELECT sa FROM off), sample_key, "
                  " shard_id + (SELECT sh FROM off), record, n_frames, style, stage, language,"
                  " corpus, speakers, duration_s, checksum, metadata, n_monologue, n_wait,"
                  " n_speak, n_listen FROM src.samples;"
                  "INSERT INTO main.events SELECT sample_id + (SELECT sa FROM off), kind, "
                  " frame, n_frames, value FROM src.events;"
                  "INSERT INTO main.merges SELECT id + (SELECT me FROM off), merged_at, "
                  " tool_version, inputs, n_samples FROM src.merges;"
                  "INSERT INTO main.inputs SELECT key, path, status, stage, error, "
                  " run_id + (SELECT r FROM off), updated_at, fingerprint FROM src.inputs "
                  " WHERE true ON CONFLICT(key) DO UPDATE SET status = excluded.status, "
                  " stage = excluded.stage, error = excluded.error, run_id = excluded.run_id,"
                  " updated_at = excluded.updated_at, path = excluded.path, "
                  " fingerprint = excluded.fingerprint WHERE main.inputs.status <> 'done';"
                  "DROP TABLE off;"
                  "COMMIT;",
                  err);
    if (rc < 0) {
        sqlite3_exec(idx->db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_exec(idx->db, "DROP TABLE IF EXISTS temp.off", NULL, NULL, NULL);
        flm_error_prefix(err, "merging %s", in_path);
    }
    return rc;
}

/* Builds the merged index at tmp (a new file); records the merge and checks the count. */
static int merge_build(const char *tmp, const char *const *inputs, size_t n_inputs,
                       int64_t expected, flm_error *err)
{
    flm_index *idx = NULL;
    int rc = flm_index_open(&idx, tmp, FLM_INDEX_CREATE, err);
    if (rc < 0)
        return rc;
    merge_ctx *m = flm_calloc(1, sizeof *m);
    json_t *names = json_array();
    if (!m || !names || !realpath(idx->dir, m->from)) {
        rc = flm_error_set(err, FLM_EIO, "%s: cannot resolve its directory", idx->path);
        goto done;
    }
    sqlite3_create_function(idx->db, "flm_relpath", 1, SQLITE_UTF8, m, sql_relpath, NULL, NULL);
    for (size_t k = 0; k < n_inputs && rc == 0; k++) {
        char *in_path = flm_index_resolve_path(inputs[k]);
        char canon[PATH_MAX];
        char *slash = in_path ? strrchr(in_path, '/') : NULL;
        if (!in_path) {
            rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
            break;
        }
        if (slash)
            *slash = 0;
        if (!realpath(slash ? (in_path[0] ? in_path : "/") : ".", m->in_dir))
            rc = flm_error_set(err, FLM_EIO, "%s: cannot resolve its directory: %s", inputs[k],
                               strerror(errno));
        if (slash)
            *slash = '/';
        json_array_append_new(names, json_string(realpath(in_path, canon) ? canon : in_path));
        char *q = rc < 0 ? NULL : sqlite3_mprintf("ATTACH DATABASE %Q AS src", in_path);
        if (rc == 0)
            rc = q ? exec(idx, q, err) : flm_error_set(err, FLM_ENOMEM, "out of memory");
        sqlite3_free(q);
        if (rc == 0) {
            rc = merge_one(idx, in_path, err);
            exec(idx, "DETACH DATABASE src", NULL);
        }
        flm_free(in_path);
    }
    int64_t held = rc == 0 ? flm_index_count_samples(idx, err) : 0;
    if (rc == 0 && held < 0)
        rc = (int)held;
    if (rc == 0 && held != expected)
        rc = flm_error_set(err, FLM_EMISMATCH,
                           "merge: the inputs held %lld samples, the merged index %lld (an input "
                           "changed during the merge?)",
                           (long long)expected, (long long)held);
    char *list = rc == 0 ? json_dumps(names, JSON_COMPACT) : NULL;
    sqlite3_stmt *st = NULL;
    if (rc == 0 && !list)
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
    if (rc == 0 && (rc = prepare(idx, &st,
                                 "INSERT INTO merges (merged_at, tool_version, inputs, n_samples) "
                                 "VALUES (?,?,?,?)",
                                 err)) == 0) {
        char now[32];
        now_iso(now, sizeof now);
        sqlite3_bind_text(st, 1, now, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, FLM_VERSION, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, list, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, expected);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_error(idx, err, "recording the merge");
    }
    sqlite3_finalize(st);
    free(list);
    /* everything into the main file: the rename moves the database without its -wal */
    if (rc == 0)
        rc = exec(idx, "PRAGMA wal_checkpoint(TRUNCATE)", err);
done:
    json_decref(names);
    flm_free(m);
    flm_index_close(&idx);
    return rc;
}

int flm_index_merge(const char *out_path, const char *const *inputs, size_t n_inputs, int flags,
                    flm_error *err)
{
    char *out = flm_index_resolve_path(out_path);
    char *dir = out ? flm_strdup(out) : NULL, *tmp = NULL;
    flm_dataset_lock *lock = NULL;
    struct stat st;
    int rc = 0;
    if (!out || !dir) {
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
        goto done;
    }
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    const char *d = slash ? (dir[0] ? dir : "/") : ".";
    if (stat(d, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = flm_error_set(err, FLM_ENOTFOUND, "%s: the directory %s does not exist", out, d);
        goto done;
    }
    if ((rc = flm_dataset_lock_acquire(&lock, d, "flm index merge", FLM_LOCK_EXCLUSIVE, err)) < 0)
        goto done;
    if (!(flags & FLM_INDEX_MERGE_REPLACE) && stat(out, &st) == 0) {
        rc = flm_error_set(err, FLM_EINVAL, "%s already exists; merge writes a new index", out);
        goto done;
    }
    size_t n = strlen(out) + 40;
    if (!(tmp = flm_malloc(n))) {
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
        goto done;
    }
    /* a merge killed earlier left its temporary index (we hold the lock: nobody else's) */
    const char *base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
    size_t bl = strlen(base);
    DIR *dd = opendir(d);
    struct dirent *de;
    while (dd && (de = readdir(dd))) {
        if (strncmp(de->d_name, base, bl) == 0 && strncmp(de->d_name + bl, ".tmp-", 5) == 0) {
            char stale[PATH_MAX + 256];
            snprintf(stale, sizeof stale, "%s/%s", d, de->d_name);
            unlink(stale);
        }
    }
    if (dd)
        closedir(dd);
    snprintf(tmp, n, "%s.tmp-merge-%ld", out, (long)getpid());
    int64_t expected = 0;
    if ((rc = merge_inputs_check(inputs, n_inputs, &expected, err)) == 0 &&
        (rc = merge_build(tmp, inputs, n_inputs, expected, err)) == 0) {
        /* the merged index appears under its name complete, or not at all */
        if (rename(tmp, out) < 0)
            rc = flm_error_set(err, FLM_EIO, "index %s: rename from %s failed: %s", out, tmp,
                               strerror(errno));
        else if (flm_fsync_dir(out) < 0)
            rc = flm_error_set(err, FLM_EIO, "index %s: fsync of its directory failed: %s", out,
                               strerror(errno));
        if (rc == 0) { /* a replaced index's -wal and -shm belonged to the old file */
            snprintf(tmp, n, "%s-wal", out);
            unlink(tmp);
            snprintf(tmp, n, "%s-shm", out);
            unlink(tmp);
        }
    }
    if (rc < 0 && tmp[0])
        unlink_db(tmp);
done:
    flm_dataset_lock_release(&lock);
    flm_free(tmp);
    flm_free(dir);
    flm_free(out);
    return rc;
}
