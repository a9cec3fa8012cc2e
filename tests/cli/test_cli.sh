#!/usr/bin/env bash
# End-to-end tests of the flm command: demo, inspect, index stats/check/merge/locate, bad inputs.
# usage: test_cli.sh FLM_BINARY WORK_DIR
set -u
FLM=$1
W=$2/cli.$$
. "$(dirname "$0")/tap.sh"
rm -rf "$W"; mkdir -p "$W"
export FLM_PROGRESS=0

out=$("$FLM" --help); ok $? "flm --help exits 0"
like "$out" "inspect" "help lists inspect"
"$FLM" frobnicate >/dev/null 2>&1; is $? 2 "unknown command exits 2"
out=$("$FLM" demo --synthetic --samples 2>&1); is $? 2 "missing option value is a usage error"
like "$out" "needs a value" "and says so"
out=$("$FLM" demo --synthetic --samples -3 2>&1); is $? 2 "bad option value"
like "$out" "expected an integer" "is explained"

out=$("$FLM" demo --synthetic --out "$W/a" --samples 40 --per-shard 8 --seed 3); ok $? "demo builds a dataset"
like "$out" "40 samples in 5 shards (0 already done)" "demo summary"
like "$out" "by corpus:" "demo prints stats"
like "$out" "speak0" "demo prints a timeline"
out=$("$FLM" demo --synthetic --out "$W/a" --samples 40 --per-shard 8 --seed 3); ok $? "demo again"
like "$out" "(5 already done)" "a finished demo is not redone"
out=$("$FLM" index check "$W/a"); ok $? "index check of a fresh dataset passes"
like "$out" "OK, 40 samples verified" "check reports the count"

out=$("$FLM" index stats "$W/a" --json); ok $? "stats --json"
n=$(printf '%s' "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["total"]["samples"], sum(g["samples"] for g in d["corpus"]))')
is "$n" "40 40" "stats JSON totals agree"

loc=$("$FLM" index locate "$W/a" synthetic/3/000011); ok $? "locate"
is "$loc" "$W/a/shards/000001.flms:3" "sample 11 is record 3 of shard 1"
out=$("$FLM" inspect "$loc" --json); ok $? "inspect one sample as JSON"
chk=$(printf '%s' "$out" | python3 -c '
import json,sys
d=json.load(sys.stdin)
t=d["tokens"]; c=d["loss_class"]
ok = len(t)==17 and len(c)==17 and all(len(r)==d["n_frames"] for r in t+c)
wait = all((c[0][i]==4) == (t[0][i]==151665) for i in range(d["n_frames"]))
print(d["id"], ok, wait)')
is "$chk" "synthetic/3/000011 True True" "JSON: 17 rows of n_frames, wait classes match tokens"
out=$("$FLM" inspect "$W/a" --sample synthetic/3/000011 --from 5 --frames 4 --classes); ok $? "inspect by key"
like "$out" "frames 5..8" "window as asked"
like "$out" "loss classes" "class view"
out=$("$FLM" inspect "$W/a/shards/000002.flms"); ok $? "inspect a shard"
like "$out" "records   8" "record count"
out=$("$FLM" inspect "$W/a/shards/000002.flms:99" 2>&1); is $? 1 "record out of range fails"
like "$out" "record 99 out of range" "and says so"
out=$("$FLM" inspect "$W/nope.flms" 2>&1); is $? 1 "missing shard fails"
like "$out" "nope.flms: cannot open" "naming the file"
printf 'hello, not a shard at all, just some text....................................' > "$W/garbage.flms"
out=$("$FLM" inspect "$W/garbage.flms" 2>&1); is $? 1 "garbage shard fails"
like "$out" "not a flmstream shard" "with the reason"

# merge two datasets built apart
"$FLM" demo --synthetic --out "$W/b" --samples 12 --per-shard 5 --seed 4 >/dev/null; ok $? "second dataset"
out=$("$FLM" index merge "$W/a" "$W/b" -o "$W/merged"); ok $? "merge into a new directory"
out=$("$FLM" index merge "$W/a" "$W/b" -o "$W/merged" 2>&1); is $? 1 "merge never overwrites an index"
like "$out" "already exists" "and says so"
out=$("$FLM" index check "$W/merged"); ok $? "merged index checks clean"
like "$out" "OK, 52 samples verified" "merged holds both"
out=$("$FLM" index merge "$W/a" "$W/a" -o "$W/dup.sqlite" 2>&1); is $? 1 "merging a dataset with itself fails"
like "$out" "also in an earlier input" "naming the duplicate"

# damage behind the index's back
cp -r "$W/a" "$W/c"
printf '\x42' | dd of="$W/c/shards/000003.flms" bs=1 seek=5000 conv=notrunc 2>/dev/null
out=$("$FLM" index check "$W/c" 2>&1); is $? 1 "check fails on a flipped byte"
like "$out" "000003.flms: record 0: checksum mismatch" "naming shard and record"
rm "$W/c/shards/000001.flms"
out=$("$FLM" index check "$W/c" 2>&1); is $? 1 "check fails on a deleted shard"
like "$out" "000001.flms: cannot open" "naming it"
cp "$W/b/shards/000000.flms" "$W/c/shards/000004.flms"
out=$("$FLM" index check "$W/c" 2>&1)
like "$out" "000004.flms: holds 5 records, the index says 8" "a swapped shard is caught"

# recipes
out=$("$FLM" recipe check "$(dirname "$0")/../../schemas/recipes/post-training-2.json"); ok $? "shipped recipe validates"
like "$out" "transcribed x0.5" "and shows the corpus weights"
printf '{"kind":"recipe","name":"x","stage":"s","packing":{"lead":5}}' > "$W/bad-recipe.json"
out=$("$FLM" recipe check "$W/bad-recipe.json" 2>&1); is $? 1 "a bad recipe fails"
like "$out" "bad-recipe.json: key \"packing.lead\": expected an integer in \[0, 2\]" "naming file and key"
out=$("$FLM" recipe check "$(dirname "$0")/../../schemas/recipes/fine-tuning-2.json"); ok $? "fine-tuning-2 validates"
like "$out" "formats: rtts 0.50, rtts-free 0.50" "with its dialog formats"
like "$out" "interruptions p 0.70, reaction 0.50 s" "interruption settings"
like "$out" "p_echo 0.3, echo gain 0..0.2, delay 0.1..0.5 s" "and echo leakage"
printf '{"kind":"recipe","name":"x","stage":"s","augmentation":{"p_ech":0.3}}' > "$W/bad-recipe.json"
out=$("$FLM" recipe check "$W/bad-recipe.json" 2>&1); is $? 1 "an unknown augmentation key fails"
like "$out" "bad-recipe.json: key \"augmentation.p_ech\": augment: unknown parameter" "naming it"
printf '{"kind":"recipe","name":"x","stage":"s","augmentation":{"p_echo":3}}' > "$W/bad-recipe.json"
out=$("$FLM" recipe check "$W/bad-recipe.json" 2>&1); is $? 1 "an augmentation value out of range fails"
like "$out" "bad-recipe.json: augmentation: .*p_echo" "naming it"

done_testing
