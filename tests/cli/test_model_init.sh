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
echo "1..$n"
exit $fail
