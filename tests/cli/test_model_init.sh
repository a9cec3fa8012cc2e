#!/bin/sh
# flm model init / info: deterministic random checkpoints that load through the real path.
# usage: test_model_init.sh FLM
set -u
flm=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
fail=0
check() { # check DESCRIPTION COMMAND...
    n=$((n + 1)); d=$1; shift
    if "$@" >"$tmp/out" 2>&1; then echo "ok $n - $d"; else echo "not ok $n - $d"; sed 's/^/# /' "$tmp/out"; fail=1; fi
}
fails() { # fails DESCRIPTION EXPECTED_TEXT COMMAND...
    n=$((n + 1)); d=$1; want=$2; shift 2
    if "$@" >"$tmp/out" 2>&1; then echo "not ok $n - $d (succeeded)"; fail=1
    elif grep -q -- "$want" "$tmp/out"; then echo "ok $n - $d"
    else echo "not ok $n - $d"; sed 's/^/# /' "$tmp/out"; fail=1; fi
}
check "init tiny seed 5" "$flm" model init --arch mimi --size tiny --seed 5 -o "$tmp/a.safetensors"
check "init tiny seed 5 again" "$flm" model init --arch mimi --size tiny --seed 5 -o "$tmp/b.safetensors"
check "same seed, same bytes" cmp "$tmp/a.safetensors" "$tmp/b.safetensors"
check "init tiny seed 6" "$flm" model init --arch mimi --size tiny --seed 6 -o "$tmp/c.safetensors"
n=$((n + 1)); if cmp -s "$tmp/a.safetensors" "$tmp/c.safetensors"; then echo "not ok $n - other seed differs"; fail=1; else echo "ok $n - other seed differs"; fi
check "info loads it" "$flm" model info --arch mimi "$tmp/a.safetensors"
n=$((n + 1)); if grep -q "quantizer: 8 of 8 codebooks, 2048 bins, dimension 16" "$tmp/out"; then echo "ok $n - info reports the tiny config"; else echo "not ok $n - info config"; cat "$tmp/out"; fail=1; fi
head -c 100000 "$tmp/a.safetensors" > "$tmp/trunc.safetensors"
fails "truncated checkpoint" "out of bounds" "$flm" model info --arch mimi "$tmp/trunc.safetensors"
fails "unknown size" "unknown Mimi size 'medium'" "$flm" model init --arch mimi --size medium -o "$tmp/x"
fails "unknown arch" "unknown --arch 'llama'" "$flm" model init --arch llama --size tiny -o "$tmp/x"
fails "bad seed" "--seed must be an unsigned integer" "$flm" model init --arch mimi --size tiny --seed x -o "$tmp/x"
fails "missing file" "No such file" "$flm" model info --arch mimi "$tmp/none.safetensors"
# FLM-Audio RQ-Transformer (issue 7)
check "flm init tiny seed 5" "$flm" model init --arch flm --size tiny --seed 5 -o "$tmp/f1"
check "flm init tiny seed 5, f32, 3 MB shards" "$flm" model init --arch flm --size tiny --seed 5 --dtype f32 --shard-mb 3 -o "$tmp/f2"
check "flm init tiny seed 5 again" "$flm" model init --arch flm --size tiny --seed 5 -o "$tmp/f3"
check "flm: same seed, same bytes" cmp "$tmp/f1/model.safetensors" "$tmp/f3/model.safetensors"
check "flm: config.json identical" cmp "$tmp/f1/config.json" "$tmp/f3/config.json"
n=$((n + 1)); if [ "$(ls "$tmp/f2"/model-*-of-*.safetensors | wc -l)" -ge 5 ] && [ -f "$tmp/f2/model.safetensors.index.json" ]; then echo "ok $n - flm: sharded checkpoint with an index"; else echo "not ok $n - flm: sharded"; ls "$tmp/f2" | sed 's/^/# /'; fail=1; fi
check "flm info loads the single file" "$flm" model info --arch flm "$tmp/f1"
n=$((n + 1)); if grep -q "backbone: 2 layers, hidden 64, 4 heads / 2 kv heads (head 16), ff 128, vocab 152064" "$tmp/out" && grep -q "tokens: wait 151665, audio pad 2048, audio empty 2049" "$tmp/out"; then echo "ok $n - flm info reports the tiny config"; else echo "not ok $n - flm info config"; sed 's/^/# /' "$tmp/out"; fail=1; fi
check "flm info loads the sharded f32 checkpoint" "$flm" model info --arch flm "$tmp/f2"
n=$((n + 1)); if grep -q "22.8 M parameters" "$tmp/out"; then echo "ok $n - flm: 22.8 M parameters"; else echo "not ok $n - parameter count"; sed 's/^/# /' "$tmp/out"; fail=1; fi
check "flm quantize to q4" "$flm" model quantize --model "$tmp/f1" --weights q4 -o "$tmp/q4"
check "flm info --weights q4 loads it" "$flm" model info --arch flm "$tmp/q4" --weights q4
n=$((n + 1)); if grep -q "weights in memory: .* MB (q4)" "$tmp/out" && [ "$(stat -c %s "$tmp/q4/model.safetensors")" -lt 16000000 ]; then echo "ok $n - q4 checkpoint about a third of bf16"; else echo "not ok $n - q4 size"; sed 's/^/# /' "$tmp/out"; fail=1; fi
# --mmap: every matrix of a file that stores the requested format is computed from the mapping
check "flm info --weights bf16 --mmap" "$flm" model info --arch flm "$tmp/f1" --weights bf16 --mmap
n=$((n + 1)); if grep -q "weights in memory: 0.0 MB (bf16)" "$tmp/out" && grep -q "computed from the file's mapping: 45.7 MB" "$tmp/out"; then echo "ok $n - flm info --mmap: 45.7 MB of bf16 weights mapped"; else echo "not ok $n - flm info --mmap bf16"; sed 's/^/# /' "$tmp/out"; fail=1; fi
check "flm info --weights f32 --mmap, sharded" "$flm" model info --arch flm "$tmp/f2" --weights f32 --mmap
n=$((n + 1)); if grep -q "computed from the file's mapping: 91.4 MB" "$tmp/out"; then echo "ok $n - flm info --mmap: 91.4 MB of f32 weights mapped across the shards"; else echo "not ok $n - flm info --mmap sharded"; sed 's/^/# /' "$tmp/out"; fail=1; fi
check "flm info --weights q8 --mmap of a bf16 file" "$flm" model info --arch flm "$tmp/f1" --weights q8 --mmap
n=$((n + 1)); if grep -q "computed from the file's mapping: 0.0 MB" "$tmp/out"; then echo "ok $n - flm info --mmap: converted weights are copied"; else echo "not ok $n - flm info --mmap q8"; sed 's/^/# /' "$tmp/out"; fail=1; fi
fails "quantize: bad format" "--weights must be f32, bf16, q8 or q4" "$flm" model quantize --model "$tmp/f1" --weights q3 -o "$tmp/x"
fails "flm unknown size" "unknown FLM-Audio size '3b'" "$flm" model init --arch flm --size 3b -o "$tmp/x"
fails "flm bad dtype" "--dtype must be bf16 or f32" "$flm" model init --arch flm --size tiny --dtype f16 -o "$tmp/x"
fails "flm missing config" "config.json" "$flm" model info --arch flm "$tmp"
echo "1..$n"
exit $fail
