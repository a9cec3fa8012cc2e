/* SQLite dataset index. Schema and migrations: the SQL files in schemas/index/ (embedded at build
 * time). */
#include "flm_index.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "flm_alloc.h"
#include "flm_config.h"
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
                             "index %s: schema version %d, this build needs %d (open it writable "
                             "once to migrate)",
                             idx->path, v, (int)flm_index_n_migrations);
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
                     "vocab_hash, codec_hash, model_hash) VALUES (?,?,?,?,?,?,?,?)",
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

/* The index keeps a sample's key/values as a JSON object (the "metadata" member). */
static char *meta_json(const flm_sample *s)
{
    return flm_sample_to_json(s, FLM_JSON_METADATA_ONLY);
}

int flm_index_add_shard(flm_index *idx, int64_t run_id, const char *rel_path, uint64_t file_size,
                        const flm_sample *const *samples, const flm_record_info *infos, size_t n,
                        const char *const *done_inputs, size_t n_done, flm_error *err)
{
    sqlite3_stmt *sh = NULL, *sa = NULL, *ev = NULL, *in = NULL;
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
                      "INSERT INTO inputs (key, status, run_id, updated_at) VALUES (?,'done',?,?) "
                      "ON CONFLICT(key) DO UPDATE SET status='done', stage=NULL, error=NULL, "
                      "run_id=excluded.run_id, updated_at=excluded.updated_at",
                      err)) < 0)
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
        if (sqlite3_step(in) != SQLITE_DONE) {
            rc = db_error(idx, err, done_inputs[i]);
            goto fail;
        }
    }
    sqlite3_finalize(sh);
    sqlite3_finalize(sa);
    sqlite3_finalize(ev);
    sqlite3_finalize(in);
    return exec(idx, "COMMIT", err);
fail:
    sqlite3_finalize(sh);
    sqlite3_finalize(sa);
    sqlite3_finalize(ev);
    sqlite3_finalize(in);
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
        return rc;
    out->n_dialogs = (int64_t)v[0];
    out->n_eligible = (int64_t)v[1];
    out->n_dropped_tokens = (int64_t)v[2];
    if ((rc = one_row(idx,
                      "SELECT coalesce(sum(e.kind = 'interrupt'), 0), "
                      "coalesce(sum(e.kind = 'backchannel'), 0), coalesce(sum(e.kind = 'cut'), 0), "
                      "coalesce(avg(CASE WHEN e.kind IN ('interrupt', 'backchannel') THEN "
                      "e.n_frames * s.duration_s / s.n_frames END), 0) "
                      "FROM events e JOIN samples s ON s.id = e.sample_id "
                      "WHERE e.kind IN ('interrupt', 'backchannel', 'cut') AND s.n_frames > 0",
                      v, 4, err)) < 0)
        return rc;
    out->n_interrupts = (int64_t)v[0];
    out->n_backchannels = (int64_t)v[1];
    out->n_cuts = (int64_t)v[2];
    out->mean_overlap_s = v[3];
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
        return rc;
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

static void check_shard(flm_index *idx, checker *c, int64_t shard_id, const char *rel,
                        int64_t n_records, int64_t file_size, sqlite3_stmt *samples)
{
    char *path = flm_path_join(idx->dir, rel);
    if (!path) {
        problem(c, 1, "shard %s: out of memory", rel);
        return;
    }
    flm_error e = {0};
    flm_shard_reader *r = NULL;
    if (flm_shard_reader_open(&r, path, &e) < 0) {
        problem(c, 1, "%s", e.code == FLM_ENOTFOUND ? e.msg : e.msg);
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
    while (sqlite3_step(samples) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(samples, 0);
        int64_t rec = sqlite3_column_int64(samples, 1);
        int64_t frames = sqlite3_column_int64(samples, 2);
        const char *ck = (const char *)sqlite3_column_text(samples, 3);
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
        if (strcmp(hex, ck) != 0)
            problem(c, 1, "shard %s: record %lld: checksum %s, the index says %s (sample %s)", path,
                    (long long)rec, hex, ck, key);
        if ((int64_t)v.n_frames != frames)
            problem(c, 1, "shard %s: record %lld: %u frames, the index says %lld", path,
                    (long long)rec, v.n_frames, (long long)frames);
        if (!v.id || strcmp(v.id, key) != 0)
            problem(c, 1, "shard %s: record %lld: sample id \"%s\", the index says \"%s\"", path,
                    (long long)rec, v.id ? v.id : "", key);
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

int flm_index_check(flm_index *idx, flm_index_problem_fn fn, flm_index_progress_fn progress,
                    void *user, int64_t *n_errors, flm_error *err)
{
    checker c = {fn, user, 0};
    sqlite3_stmt *sh = NULL, *sa = NULL, *known = NULL, *cnt = NULL;
    int rc;
    if ((rc = prepare(idx, &sh, "SELECT id, path, n_records, file_size FROM shards ORDER BY id",
                      err)) < 0 ||
        (rc = prepare(idx, &sa,
                      "SELECT sample_key, record, n_frames, checksum FROM samples "
                      "WHERE shard_id = ? ORDER BY record",
                      err)) < 0 ||
        (rc = prepare(idx, &known, "SELECT 1 FROM shards WHERE path = ?", err)) < 0 ||
        (rc = prepare(idx, &cnt, "SELECT count(*) FROM shards", err)) < 0)
        goto done;
    int64_t total = sqlite3_step(cnt) == SQLITE_ROW ? sqlite3_column_int64(cnt, 0) : 0, done = 0;
    int step;
    while ((step = sqlite3_step(sh)) == SQLITE_ROW) {
        check_shard(idx, &c, sqlite3_column_int64(sh, 0), (const char *)sqlite3_column_text(sh, 1),
                    sqlite3_column_int64(sh, 2), sqlite3_column_int64(sh, 3), sa);
        if (progress)
            progress(user, ++done, total);
    }
    if (step != SQLITE_DONE) {
        rc = db_error(idx, err, "reading shards");
        goto done;
    }
    check_orphans(idx, &c, known);
    *n_errors = c.n_errors;
done:
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

int flm_index_merge(const char *out_path, const char *const *inputs, size_t n_inputs,
                    flm_error *err)
{
    char *out = flm_index_resolve_path(out_path);
    if (!out)
        return flm_error_set(err, FLM_ENOMEM, "out of memory");
    struct stat st;
    if (stat(out, &st) == 0) {
        int rc = flm_error_set(err, FLM_EINVAL, "%s already exists; merge writes a new index", out);
        flm_free(out);
        return rc;
    }
    flm_index *idx = NULL;
    int rc = flm_index_open(&idx, out, FLM_INDEX_CREATE, err);
    if (rc < 0) {
        flm_free(out);
        return rc;
    }
    merge_ctx *m = flm_calloc(1, sizeof *m);
    if (!m || !realpath(idx->dir, m->from)) {
        rc = flm_error_set(err, FLM_EIO, "%s: cannot resolve its directory", idx->path);
        goto done;
    }
    sqlite3_create_function(idx->db, "flm_relpath", 1, SQLITE_UTF8, m, sql_relpath, NULL, NULL);
    for (size_t k = 0; k < n_inputs && rc == 0; k++) {
        flm_index *in = NULL;
        if ((rc = flm_index_open(&in, inputs[k], FLM_INDEX_READONLY, err)) < 0)
            break;
        if (!realpath(in->dir, m->in_dir)) {
            rc = flm_error_set(err, FLM_EIO, "%s: cannot resolve its directory", in->path);
            flm_index_close(&in);
            break;
        }
        char *in_path = flm_strdup(in->path);
        flm_index_close(&in);
        if (!in_path) {
            rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
            break;
        }
        char *q = sqlite3_mprintf("ATTACH DATABASE %Q AS src", in_path);
        rc = q ? exec(idx, q, err) : flm_error_set(err, FLM_ENOMEM, "out of memory");
        sqlite3_free(q);
        if (rc < 0) {
            flm_free(in_path);
            break;
        }
        sqlite3_stmt *dup = NULL;
        rc = prepare(idx, &dup,
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
                      " (SELECT coalesce(max(id),0) FROM main.samples) AS sa;"
                      "INSERT INTO main.runs SELECT id + (SELECT r FROM off), started_at, "
                      " tool_version, command, recipe, seed, vocab_hash, codec_hash, model_hash "
                      " FROM src.runs;"
                      "INSERT INTO main.shards SELECT id + (SELECT sh FROM off), flm_relpath(path),"
                      " run_id + (SELECT r FROM off), n_records, n_frames, file_size, created_at "
                      " FROM src.shards;"
                      "INSERT INTO main.samples SELECT id + (SELECT sa FROM off), sample_key, "
                      " shard_id + (SELECT sh FROM off), record, n_frames, style, stage, language,"
                      " corpus, speakers, duration_s, checksum, metadata, n_monologue, n_wait,"
                      " n_speak, n_listen FROM src.samples;"
                      "INSERT INTO main.events SELECT sample_id + (SELECT sa FROM off), kind, "
                      " frame, n_frames, value FROM src.events;"
                      "INSERT INTO main.inputs SELECT key, path, status, stage, error, "
                      " run_id + (SELECT r FROM off), updated_at FROM src.inputs WHERE true "
                      " ON CONFLICT(key) DO UPDATE SET status = excluded.status, "
                      " stage = excluded.stage, error = excluded.error, run_id = excluded.run_id,"
                      " updated_at = excluded.updated_at, path = excluded.path "
                      " WHERE main.inputs.status <> 'done';"
                      "DROP TABLE off;"
                      "COMMIT;",
                      err);
        if (rc < 0) {
            sqlite3_exec(idx->db, "ROLLBACK", NULL, NULL, NULL);
            sqlite3_exec(idx->db, "DROP TABLE IF EXISTS temp.off", NULL, NULL, NULL);
            flm_error_prefix(err, "merging %s", in_path);
        }
        exec(idx, "DETACH DATABASE src", NULL);
        flm_free(in_path);
    }
done:
    flm_free(m);
    flm_index_close(&idx);
    if (rc < 0) {
        /* a failed merge leaves no output: the same command can be run again once the inputs
         * are fixed (merge refuses to write over an existing index) */
        size_t n = strlen(out) + 8;
        char *side = flm_malloc(n);
        for (int i = 0; side && i < 2; i++) {
            snprintf(side, n, "%s%s", out, i ? "-shm" : "-wal");
            unlink(side);
        }
        flm_free(side);
        unlink(out);
    }
    flm_free(out);
    return rc;
}
