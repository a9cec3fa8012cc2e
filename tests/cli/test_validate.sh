#!/bin/sh
# flm validate: teacher-forced loss per class over a demo dataset with a random FLM-Audio model.
# The totals must equal the per-sample figures; the weighted loss must follow the recipe's
# weights; Ctrl-C stops early with a partial report. (The loss itself is checked against an
# independent computation in tests/unit/test_lm.c.)
# usage: test_validate.sh FLM
set -u
flm=$1
. "$(dirname "$0")/tap.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export FLM_PROGRESS=0
# random packed samples: `flm demo --synthetic` (plain `flm demo` before it became the real job)
"$flm" demo --synthetic --out "$tmp/ds" --samples 8 --per-shard 4 --max-frames 50 >/dev/null 2>&1 ||
    "$flm" demo --out "$tmp/ds" --samples 8 --per-shard 4 --max-frames 50 >/dev/null 2>&1
ok $? "demo dataset"
"$flm" model init --arch flm --size tiny --seed 2 -o "$tmp/m" >/dev/null
ok $? "tiny model"
"$flm" validate --model "$tmp/m" --index "$tmp/ds" --samples 8 --json >"$tmp/v.json" 2>"$tmp/err"
ok $? "validate --json"
python3 - "$tmp/v.json" 0.5 <<'PY' >"$tmp/check" 2>&1
import json, sys, math
v = json.load(open(sys.argv[1]))
w = v["weights"]
assert len(v["samples"]) == 8 == v["n_samples"], v["n_samples"]
assert w == {"semantic": 1.0, "acoustic": float(sys.argv[2]), "monologue": 1.0, "wait": 0.01}, w
num = den = 0.0
for k in ("semantic", "acoustic", "monologue", "wait"):
    n = sum(s[k]["count"] for s in v["samples"])
    assert n == v["total"][k]["count"], (k, n)
    tot = sum(s[k]["loss"] * s[k]["count"] for s in v["samples"] if s[k]["count"])
    if n:
        assert abs(tot / n - v["total"][k]["loss"]) < 1e-9, k
        acc = sum(s[k]["accuracy"] * s[k]["count"] for s in v["samples"] if s[k]["count"]) / n
        assert abs(acc - v["total"][k]["accuracy"]) < 1e-9, k
    num += w[k] * tot
    den += w[k] * n
assert abs(num / den - v["total"]["weighted_loss"]) < 1e-9
for s in v["samples"]:
    assert s["frames"] == 50 and s["id"].startswith("synthetic/")
    assert s["monologue"]["count"] + s["wait"]["count"] == 51 - 1  # text targets: 50 frames
assert v["total"]["wait"]["count"] > 0 and v["total"]["monologue"]["count"] > 0
assert abs(v["total"]["wait"]["loss"] - math.log(152064)) < 1.0  # random model: ~uniform
# outliers: robust z = 0.6745 (x - median) / MAD > 3.5, recomputed here
x = [s["weighted_loss"] for s in v["samples"]]
def median(a):
    a = sorted(a); n = len(a)
    return a[n // 2] if n % 2 else 0.5 * (a[n // 2 - 1] + a[n // 2])
med = median(x); mad = median([abs(y - med) for y in x])
want = [mad > 0 and abs(0.6745 * (y - med) / mad) > 3.5 for y in x]
assert [s["outlier"] for s in v["samples"]] == want, (x, want)
assert v["n_outliers"] == sum(want)
print("ok", sum(want), "outliers")
PY
ok $? "totals = sums of the samples, weighted loss from the weights, outlier flags"
sed 's/^/# /' "$tmp/check" | head -5
sed 's/"wait": 0.01/"wait": 0.5/' "$(dirname "$0")/../../schemas/recipes/post-training-1.json" >"$tmp/r.json"
"$flm" validate --model "$tmp/m" --index "$tmp/ds" --samples 8 --json --recipe "$tmp/r.json" >"$tmp/v2.json" 2>/dev/null
ok $? "validate --recipe"
python3 -c "
import json,sys
a=json.load(open('$tmp/v.json'));b=json.load(open('$tmp/v2.json'))
assert b['weights']['wait']==0.5
assert a['total']['wait']==b['total']['wait']
assert a['total']['weighted_loss']!=b['total']['weighted_loss']
" >"$tmp/c2" 2>&1
ok $? "recipe weights used, per-class losses unchanged"
"$flm" validate --model "$tmp/m" --index "$tmp/ds" --frames 20 >"$tmp/t.txt" 2>&1
ok $? "text report, --frames 20"
like "$(cat "$tmp/t.txt")" "synthetic/1/000007 *20 " "each sample cut to 20 frames"
like "$(cat "$tmp/t.txt")" "8 samples, [0-9]* outliers" "summary line"
# Ctrl-C once the first sample is scored (its progress line is on stderr)
FLM_PROGRESS=1 "$flm" validate --model "$tmp/m" --index "$tmp/ds" --samples 8 >"$tmp/int.txt" 2>"$tmp/int.err" &
pid=$!
for _ in $(seq 200); do grep -q "validate: 1/8" "$tmp/int.err" 2>/dev/null && break; sleep 0.05; done
kill -INT $pid 2>/dev/null
wait $pid
rc=$?
if [ $rc -eq 130 ]; then like "$(cat "$tmp/int.txt")" "samples, [0-9]* outliers (interrupted)" "Ctrl-C: partial report"
else like "$rc $(cat "$tmp/int.txt")" "^0 .*8 samples" "Ctrl-C after the end: complete report"; fi
# --mmap computes from the mapped checkpoint: the same figures to the last digit
"$flm" validate --model "$tmp/m" --index "$tmp/ds" --samples 3 --json --weights bf16 >"$tmp/b1.json" 2>/dev/null &&
    "$flm" validate --model "$tmp/m" --index "$tmp/ds" --samples 3 --json --weights bf16 --mmap >"$tmp/b2.json" 2>/dev/null &&
    cmp -s "$tmp/b1.json" "$tmp/b2.json"
ok $? "--mmap: identical report"
out=$("$flm" validate --model "$tmp/none" --index "$tmp/ds" --mmap 2>&1)
like "$out" "config.json" "--mmap: missing model names the file"
out=$("$flm" validate --model "$tmp/none" --index "$tmp/ds" 2>&1)
like "$out" "config.json" "missing model names the file"
out=$("$flm" validate --model "$tmp/m" 2>&1)
like "$out" "flm: validate: missing --index DATASET" "--index required: said in one line"
done_testing
