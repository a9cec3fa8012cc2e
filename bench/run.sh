#!/usr/bin/env bash
# Runs the storage benchmarks and prints their figures (copy them into bench/RESULTS.md).
# usage: bench/run.sh [WORKDIR]   (needs about 14 GB free in WORKDIR: 10 GB for the random-access
# run, 3.5 GB for the 1B FLM-Audio checkpoint)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/var/tmp/flm-bench}
mkdir -p "$work"
tools/build.sh build
echo "== shard write/read vs zstd CLI, bytes per frame"
build/bench/bench_shard "$work" 200
echo "== random access through the index (10 GB dataset)"
build/bench/bench_random_access "$work" 10 2000
echo "== training reader (Python): random vs sequential, 2 workers, memory with 1M samples"
[ -f "$work/reader/index.sqlite" ] || FLM_PROGRESS=0 build/bin/flm demo --synthetic --out "$work/reader" --samples 4000 --per-shard 100 --seed 5 >/dev/null
FLMSTREAM_LIB=build/libflmstream.so /usr/bin/python3 bench/bench_reader.py "$work/reader" 2000
echo "== FLM-Audio LM: decode and teacher forcing per weight format (1B and 7B shapes)"
# OpenMP's default wait policy (threads spin briefly between products, as users run it);
# the 7B bf16 run holds a context of 8193 steps (the memory goal: 24 GiB)
build/bench/bench_lm 1b f32,bf16,q8,q4 20 256
build/bench/bench_lm 7b q4,q8 5 256
build/bench/bench_lm 7b bf16 5 256 2 8193
echo "== FLM-Audio LM: weights in memory vs computed from the mapping (1B bf16; checkpoint written once)"
build/bench/bench_lm_mmap "$work/lm-1b-bf16" 6 30 128
