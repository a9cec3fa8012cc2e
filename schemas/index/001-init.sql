-- flmstream dataset index, schema version 1.
-- Applied by libstream/index.c in order; PRAGMA user_version = number of migrations applied.
-- Paths are relative to the directory holding the index file.

CREATE TABLE runs (
    id           INTEGER PRIMARY KEY,
    started_at   TEXT NOT NULL,           -- ISO-8601 UTC
    tool_version TEXT NOT NULL,
    command      TEXT NOT NULL,           -- the command line of the job
    recipe       TEXT,                    -- recipe JSON, verbatim
    seed         INTEGER,
    vocab_hash   TEXT, codec_hash TEXT, model_hash TEXT   -- profile hashes (hex)
);

CREATE TABLE shards (
    id         INTEGER PRIMARY KEY,
    path       TEXT NOT NULL UNIQUE,
    run_id     INTEGER REFERENCES runs(id),
    n_records  INTEGER NOT NULL,
    n_frames   INTEGER NOT NULL,          -- sum over its records
    file_size  INTEGER NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE samples (
    id         INTEGER PRIMARY KEY,
    sample_key TEXT NOT NULL UNIQUE,      -- the sample's id
    shard_id   INTEGER NOT NULL REFERENCES shards(id),
    record     INTEGER NOT NULL,          -- record number inside the shard
    n_frames   INTEGER NOT NULL,
    style      TEXT,
    stage      TEXT,
    language   TEXT,
    corpus     TEXT,
    speakers   TEXT,
    duration_s REAL NOT NULL,
    checksum   TEXT NOT NULL,             -- XXH3-64 (hex) of the uncompressed record
    metadata   TEXT NOT NULL DEFAULT '{}',-- JSON object of the sample's key/values
    UNIQUE (shard_id, record)
);
CREATE INDEX samples_by_corpus ON samples (corpus, language, style, stage);

CREATE TABLE events (
    sample_id INTEGER NOT NULL REFERENCES samples(id),
    kind      TEXT NOT NULL,              -- "interrupt", "cut", "backchannel", ...
    frame     INTEGER NOT NULL,
    n_frames  INTEGER NOT NULL,
    value     REAL
);
CREATE INDEX events_by_kind ON events (kind);
CREATE INDEX events_by_sample ON events (sample_id);

CREATE TABLE inputs (
    key        TEXT PRIMARY KEY,          -- stable id of an input (file or manifest item)
    path       TEXT,
    status     TEXT NOT NULL CHECK (status IN ('done', 'quarantined')),
    stage      TEXT,                      -- pipeline stage that failed (quarantined)
    error      TEXT,                      -- the error message (quarantined)
    run_id     INTEGER REFERENCES runs(id),
    updated_at TEXT NOT NULL
);
