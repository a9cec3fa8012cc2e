#!/usr/bin/env bash
# Crash safety: a job killed with SIGKILL at random moments never leaves a shard that opens as
# valid but is not, keeps an index that `flm index check` accepts, and when rerun finishes with a
# dataset byte-identical to an uninterrupted run.
# usage: test_crash_resume.sh FLM_BINARY WORK_DIR
set -u
FLM=$1
W=$2/crash.$$
. "$(dirname "$0")/tap.sh"
rm -rf "$W"; mkdir -p "$W"
export FLM_PROGRESS=0
ARGS="--samples 240 --per-shard 6 --seed 7"

"$FLM" demo --synthetic --out "$W/ref" $ARGS >/dev/null; ok $? "uninterrupted reference run"

TRIALS=${FLM_CRASH_TRIALS:-24}
bad_check=0; bad_shard=0; tmp_valid=0; tmp_bad=0; kills=0; runs=0; restarts=0
while [ "$kills" -lt "$TRIALS" ] && [ "$runs" -lt 200 ]; do
    runs=$((runs + 1))
    "$FLM" demo --synthetic --out "$W/job" $ARGS >/dev/null 2>&1 &
    pid=$!
    sleep "0.$(( RANDOM % 8 ))$(( RANDOM % 10 ))"   # a random moment in the first 0.8 s
    if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
    wait "$pid" 2>/dev/null
    [ -f "$W/job/index.sqlite" ] || continue
    if ! "$FLM" index check "$W/job" --quiet >"$W/check.log" 2>&1; then
        bad_check=$((bad_check + 1)); diag "run $runs: check failed: $(head -3 "$W/check.log")"
    fi
    for f in "$W"/job/shards/*; do
        [ -e "$f" ] || continue
        case "$f" in
        # a temporary file either does not open (unfinished) or, killed between its footer and
        # the rename, is complete: then every record must verify
        *.tmp-*) if "$FLM" inspect "$f" >"$W/tmp.log" 2>&1; then tmp_valid=$((tmp_valid + 1));
                 elif ! grep -q "did not finish\|too short\|truncated" "$W/tmp.log"; then
                     tmp_bad=$((tmp_bad + 1)); diag "run $runs: $f: $(head -2 "$W/tmp.log")"; fi ;;
        *.flms) "$FLM" inspect "$f" >/dev/null 2>&1 || { bad_shard=$((bad_shard + 1)); diag "run $runs: $f invalid"; } ;;
        esac
    done
    # a job that got to the end is started afresh, so kills land at every stage of a job
    if [ "$(sqlite3 -readonly "$W/job/index.sqlite" 'SELECT count(*) FROM samples' 2>/dev/null)" = 240 ]; then
        rm -rf "$W/job"; restarts=$((restarts + 1))
    fi
done
diag "$kills of $runs runs were killed mid-job; $restarts jobs completed and restarted"
ok $((kills < 20)) "at least 20 runs killed mid-job ($kills)"
is "$bad_check" 0 "flm index check accepts the index after every kill"
is "$bad_shard" 0 "every file under a final shard name is a valid shard"
is "$tmp_bad" 0 "a killed writer's temporary file is either rejected as unfinished or complete and valid"
diag "$tmp_valid temporary files were complete (killed between footer and rename)"

out=$("$FLM" demo --synthetic --out "$W/job" $ARGS); ok $? "rerun finishes the job"
"$FLM" index check "$W/job" --quiet; ok $? "finished dataset checks clean"
q="SELECT sample_key, checksum, n_frames FROM samples ORDER BY sample_key"
a=$(sqlite3 -readonly "$W/ref/index.sqlite" "$q" | md5sum); b=$(sqlite3 -readonly "$W/job/index.sqlite" "$q" | md5sum)
is "$b" "$a" "same samples with the same content checksums as the uninterrupted run"
n=$(sqlite3 -readonly "$W/job/index.sqlite" "SELECT count(*) FROM samples"); is "$n" 240 "no sample lost or duplicated"
same=0
for f in "$W"/ref/shards/*.flms; do cmp -s "$f" "$W/job/shards/$(basename "$f")" || same=1; done
is "$same" 0 "every shard is byte-identical to the uninterrupted run's"
done_testing
