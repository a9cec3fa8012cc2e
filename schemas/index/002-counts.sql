-- Schema version 2: per-sample counts for reports (token rates, speech shares) without reading
-- the shards. Rows written by version 1 keep NULL (reports treat them as unknown).
ALTER TABLE samples ADD COLUMN n_monologue INTEGER;  -- text tokens other than <wait>
ALTER TABLE samples ADD COLUMN n_wait INTEGER;       -- <wait> tokens
ALTER TABLE samples ADD COLUMN n_speak INTEGER;      -- frames with a speak semantic target
ALTER TABLE samples ADD COLUMN n_listen INTEGER;     -- frames whose listen semantic code is not empty/pad
