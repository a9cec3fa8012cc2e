-- Schema version 3 (issue 18): what the index is complete for, and what made its samples.
-- Rows written by older versions keep NULL (unknown: not checked).

-- samples the run registered (raised in the transaction that registers each of its shards)
ALTER TABLE runs ADD COLUMN n_samples INTEGER;
-- JSON object: everything that decides the bytes of the run's samples (docs/index.md, "Pinned
-- configuration"), and "files" naming where they came from
ALTER TABLE runs ADD COLUMN config TEXT;
-- XXH3-64 (hex) of the canonical config without "files"
ALTER TABLE runs ADD COLUMN fingerprint TEXT;
-- a done input: the fingerprint of the run that packed it
ALTER TABLE inputs ADD COLUMN fingerprint TEXT;

-- each merge that built this index: the inputs and the samples they held together; the index
-- must hold at least that many (a merge stopped half way would hold fewer)
CREATE TABLE merges (
    id           INTEGER PRIMARY KEY,
    merged_at    TEXT NOT NULL,
    tool_version TEXT NOT NULL,
    inputs       TEXT NOT NULL,           -- JSON array of the merged index paths
    n_samples    INTEGER NOT NULL
);
