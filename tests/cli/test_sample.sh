#!/bin/sh
# flm sample: full-duplex generation with random tiny FLM-Audio and Mimi checkpoints. Checks the
# outputs' lengths and layout, reproducibility from the seed, the user channel of stereo.wav and
# TTS-style text forcing. (A speech code 2048/2049 would make the Mimi decode fail.)
# usage: test_sample.sh FLM TOKENIZER_JSON WAV
set -u
flm=$1
tokjson=$2
wav=$3
. "$(dirname "$0")/tap.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export FLM_PROGRESS=0
"$flm" model init --arch flm --size tiny --seed 4 -o "$tmp/m" >/dev/null
ok $? "tiny FLM-Audio"
"$flm" model init --arch mimi --size tiny --seed 4 -o "$tmp/mimi.safetensors" >/dev/null
ok $? "tiny Mimi"
out=$("$flm" sample --model "$tmp/m" --codec "$tmp/mimi.safetensors" --user-audio "$wav" -o "$tmp/a" --seed 3 2>&1)
ok $? "sample from user audio"
like "$out" "49 frames (3.92 s) generated" "2 s of user audio + 2 s: 50 steps, 49 output frames"
"$flm" sample --model "$tmp/m" --codec "$tmp/mimi.safetensors" --user-audio "$wav" -o "$tmp/b" --seed 3 >/dev/null 2>&1
"$flm" sample --model "$tmp/m" --codec "$tmp/mimi.safetensors" --user-audio "$wav" -o "$tmp/c" --seed 4 >/dev/null 2>&1
cmp -s "$tmp/a/model.wav" "$tmp/b/model.wav" && cmp -s "$tmp/a/text.tsv" "$tmp/b/text.tsv"
ok $? "same seed, same speech and text"
! cmp -s "$tmp/a/model.wav" "$tmp/c/model.wav"
ok $? "other seed, other speech"
python3 - "$tmp/a" "$wav" <<'PY' >"$tmp/py" 2>&1
import struct, sys
def read(path):
    b = open(path, "rb").read()
    assert b[:4] == b"RIFF" and b[8:12] == b"WAVE"
    i, fmt = 12, None
    while i < len(b):
        cid, n = b[i:i + 4], struct.unpack("<I", b[i + 4:i + 8])[0]
        if cid == b"fmt ":
            fmt = struct.unpack("<HHI", b[i + 8:i + 16])
        if cid == b"data":
            data = b[i + 8:i + 8 + n]
            break
        i += 8 + n + (n & 1)
    tag, ch, rate = fmt
    if tag == 1:
        return ch, rate, [x / 32768 for x in struct.unpack("<%dh" % (len(data) // 2), data)]
    return ch, rate, list(struct.unpack("<%df" % (len(data) // 4), data))
d = sys.argv[1]
ch, rate, m = read(d + "/model.wav")
assert (ch, rate, len(m)) == (1, 24000, 50 * 1920), (ch, rate, len(m))
assert max(abs(x) for x in m[:49 * 1920]) > 0 and max(abs(x) for x in m[49 * 1920:]) == 0
ch, rate, s = read(d + "/stereo.wav")
assert (ch, len(s)) == (2, 2 * 50 * 1920)
_, _, u = read(sys.argv[2])
assert all(abs(s[2 * i] - u[i]) < 1e-6 for i in range(len(u))), "left = user audio"
assert all(s[2 * i] == 0 for i in range(len(u), 50 * 1920)), "then silence"
assert all(s[2 * i + 1] == m[i] for i in range(50 * 1920)), "right = model"
rows = [l.split("\t") for l in open(d + "/text.tsv").read().splitlines()]
assert all(abs(float(r[1]) - int(r[0]) * 0.08) < 1e-9 and int(r[2]) != 151665 for r in rows)
print("ok")
PY
ok $? "model.wav 50 frames (last silent), stereo.wav = user | model, text.tsv frame times"
sed 's/^/# /' "$tmp/py" | head -5
"$flm" sample --model "$tmp/m" --codec "$tmp/mimi.safetensors" --user-audio "$wav" -o "$tmp/g1" --greedy --seed 1 >/dev/null 2>&1 &&
    "$flm" sample --model "$tmp/m" --codec "$tmp/mimi.safetensors" --user-audio "$wav" -o "$tmp/g2" --greedy --seed 2 >/dev/null 2>&1 &&
    cmp -s "$tmp/g1/model.wav" "$tmp/g2/model.wav"
ok $? "--greedy ignores the seed"
"$flm" sample --model "$tmp/m" --codec "$tmp/mimi.safetensors" --user-audio "$wav" -o "$tmp/m1" --seed 3 --weights bf16 >/dev/null 2>&1 &&
    "$flm" sample --model "$tmp/m" --codec "$tmp/mimi.safetensors" --user-audio "$wav" -o "$tmp/m2" --seed 3 --weights bf16 --mmap >/dev/null 2>&1 &&
    cmp -s "$tmp/m1/model.wav" "$tmp/m2/model.wav" && cmp -s "$tmp/m1/text.tsv" "$tmp/m2/text.tsv"
ok $? "--mmap: the same speech and text as weights in memory"
if [ -f "$tokjson" ]; then # tests/node_modules (tools/deps.sh) holds the tokenizer
    out=$("$flm" sample --model "$tmp/m" --codec "$tmp/mimi.safetensors" --text "Hello world. How are you?" --tokenizer "$tokjson" --seconds 2 -o "$tmp/t" 2>&1)
    ok $? "TTS-style --text"
    like "$out" "24 frames (1.92 s) generated, 7 text tokens" "7 forced text tokens, then waits"
    is "$(cat "$tmp/t/monologue.txt")" "$(printf '0.00\tHello world. How are you?')" "monologue.txt: the text at 0.00 s"
    is "$(cut -f4 "$tmp/t/text.tsv" | head -2 | tr '\n' ' ')" "Hello Ġworld " "text.tsv: pieces"
else
    _n=$((_n + 1)); echo "ok $_n - TTS-style --text # SKIP no $tokjson"
fi
out=$("$flm" sample --model "$tmp/m" --codec "$tmp/mimi.safetensors" --text "hi" -o "$tmp/x" 2>&1)
like "$out" "flm: sample: --text needs --tokenizer" "--text needs --tokenizer: said in one line"
like "$out" "see flm sample --help" "... with a pointer to the help, not the help itself"
out=$("$flm" sample --model "$tmp/m" --codec "$tmp/none.safetensors" --user-audio "$wav" -o "$tmp/x" 2>&1)
like "$out" "none.safetensors" "missing codec names the file"
done_testing
