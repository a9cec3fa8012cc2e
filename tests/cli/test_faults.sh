#!/usr/bin/env bash
# Failure injection at the file-system level: disk full (a small tmpfs), read-only output,
# SIGTERM/SIGINT at random moments. Each: no crash, a clear error naming the file, no corrupt
# shard, a consistent index, and a resumed job that completes with the same dataset as an
# undisturbed run. Needs root to mount tmpfs (skipped otherwise).
# usage: test_faults.sh FLM_BINARY WORK_DIR
set -u
FLM=$1
W=$2/faults.$$
. "$(dirname "$0")/tap.sh"
rm -rf "$W"; mkdir -p "$W/full" "$W/ro"
export FLM_PROGRESS=0
ARGS="--samples 120 --per-shard 10 --seed 21"
q="SELECT sample_key, checksum FROM samples ORDER BY sample_key"

"$FLM" demo --synthetic --out "$W/ref" $ARGS >/dev/null; ok $? "undisturbed reference run"
ref=$(sqlite3 -readonly "$W/ref/index.sqlite" "$q" | md5sum)

if mount -t tmpfs -o size=2m tmpfs "$W/full" 2>/dev/null; then
    out=$("$FLM" demo --synthetic --out "$W/full/ds" $ARGS 2>&1 >/dev/null); rc=$?
    is "$rc" 1 "disk full: the job stops with exit 1 (no crash)"
    # the shard being written or the index, whichever needed the space first
    like "$out" "\(shards/0000[0-9][0-9].flms.tmp-[0-9-]*: write failed: No space left on device\|index .*/full/ds/index.sqlite: .*database or disk is full\)" \
        "the error names the file and the reason"
    "$FLM" index check "$W/full/ds" --quiet; ok $? "the index is consistent with the shards on disk"
    ls "$W"/full/ds/shards/*.tmp-* >/dev/null 2>&1; is $? 2 "the failed writer removed its temporary file"
    n=$(sqlite3 -readonly "$W/full/ds/index.sqlite" "SELECT count(*) FROM samples")
    ok $((n == 0 || n >= 120)) "some shards were finished before the disk filled ($n samples)"
    mount -o remount,size=64m "$W/full"
    "$FLM" demo --synthetic --out "$W/full/ds" $ARGS >/dev/null; ok $? "with space again, the rerun completes"
    is "$(sqlite3 -readonly "$W/full/ds/index.sqlite" "$q" | md5sum)" "$ref" "same dataset as the undisturbed run"
    umount "$W/full"

    "$FLM" demo --synthetic --out "$W/ro/ds" $ARGS >/dev/null
    mount -t tmpfs -o size=64m tmpfs "$W/ro" && "$FLM" demo --synthetic --out "$W/ro/ds" --samples 10 >/dev/null
    mount -o remount,ro "$W/ro"
    out=$("$FLM" demo --synthetic --out "$W/ro/ds" $ARGS 2>&1 >/dev/null); rc=$?
    is "$rc" 1 "read-only output: exit 1, no crash"
    like "$out" "ro/ds" "the error names the dataset path"
    like "$out" "[Rr]ead-only" "and says it is read-only"
    "$FLM" index check "$W/ro/ds" --quiet; ok $? "the read-only dataset is still consistent"
    umount "$W/ro"
else
    for i in $(seq 1 12); do echo "ok $((_n + 1)) # SKIP cannot mount tmpfs (not root)"; _n=$((_n + 1)); done
fi

# SIGTERM and SIGINT at random moments, then resume (a job that got to its end starts afresh)
bad=0; stops=0; runs=0
while [ "$stops" -lt 12 ] && [ "$runs" -lt 100 ]; do
    runs=$((runs + 1))
    sig=$([ $((runs % 2)) = 0 ] && echo TERM || echo INT)
    "$FLM" demo --synthetic --out "$W/sig" $ARGS >/dev/null 2>&1 &
    pid=$!
    sleep "0.$(( RANDOM % 3 ))$(( RANDOM % 10 ))"
    kill -s "$sig" "$pid" 2>/dev/null && stops=$((stops + 1))
    wait "$pid" 2>/dev/null
    [ -f "$W/sig/index.sqlite" ] && { "$FLM" index check "$W/sig" --quiet >/dev/null 2>&1 || bad=$((bad + 1)); }
    [ "$(sqlite3 -readonly "$W/sig/index.sqlite" 'SELECT count(*) FROM samples' 2>/dev/null)" = 120 ] && rm -rf "$W/sig"
done
diag "$stops runs stopped by SIGTERM/SIGINT"
is "$bad" 0 "the index is consistent after every SIGTERM/SIGINT"
"$FLM" demo --synthetic --out "$W/sig" $ARGS >/dev/null; ok $? "resume after signals completes"
is "$(sqlite3 -readonly "$W/sig/index.sqlite" "$q" | md5sum)" "$ref" "same dataset as the undisturbed run"
done_testing
