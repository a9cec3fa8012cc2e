#!/bin/sh
# flm codec encode/decode end to end on the golden Mimi: the CLI (FFmpeg decode of the int16
# wav, streaming in 32-frame steps, npy out) must give moshi's batch.codes exactly, and decoding
# those codes must give batch.decoded within 1e-4. Then flm render on a demo shard.
# usage: test_codec.sh FLM GOLDEN_DIR
set -u
flm=$1
g=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$tmp/out"; fail=1; }
run() { d=$1; shift; if "$@" >"$tmp/out" 2>&1; then ok "$d"; else bad "$d"; fi; }
cmp_py() { # cmp_py DESCRIPTION PYTHON_CODE
    d=$1; shift
    if python3 -c "$1" "$g" "$tmp" >"$tmp/out" 2>&1; then ok "$d: $(cat "$tmp/out")"; else bad "$d"; fi
}
# reads a tensor of the vectors file and a npy/wav written by flm, without numpy
lib='
import json, struct, sys, wave
g, tmp = sys.argv[1], sys.argv[2]
def vec(name):
    b = open(g + "/mimi_vectors.safetensors", "rb").read()
    n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); e = h[name]
    lo, hi = e["data_offsets"]; d = b[8 + n + lo: 8 + n + hi]
    return e["shape"], struct.unpack("<%d%s" % (len(d) // 4, "i" if e["dtype"] == "I32" else "f"), d)
def npy(path):
    b = open(path, "rb").read(); hl = struct.unpack("<H", b[8:10])[0]; h = b[10:10 + hl].decode()
    return h, struct.unpack("<%di" % ((len(b) - 10 - hl) // 4), b[10 + hl:])
def f32wav(path):
    b = open(path, "rb").read(); i = b.index(b"data"); n = struct.unpack("<I", b[i + 4:i + 8])[0]
    return struct.unpack("<%df" % (n // 4), b[i + 8:i + 8 + n])
'
run "encode the golden input" "$flm" codec encode "$g/mimi_input.wav" -o "$tmp/c.npy" --model "$g/mimi_weights.safetensors"
cmp_py "codes == moshi batch.codes" "$lib
h, c = npy(tmp + '/c.npy'); s, r = vec('batch.codes')
assert \"'shape': (8, 25)\" in h, h
assert list(c) == list(r), 'codes differ'
print('8 x 25 identical')"
python3 -c "$lib
s, r = vec('batch.codes')
hdr = \"{'descr': '<i4', 'fortran_order': False, 'shape': (1, 8, 25), }\"
hdr += ' ' * (64 - 10 - len(hdr) - 1) + '\n'
open(tmp + '/ref.npy', 'wb').write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(hdr)) + hdr.encode() + struct.pack('<200i', *r))
" "$g" "$tmp"
run "decode moshi's codes (shape (1, 8, 25))" "$flm" codec decode "$tmp/ref.npy" -o "$tmp/d.wav" --model "$g/mimi_weights.safetensors"
cmp_py "decoded == moshi batch.decoded" "$lib
x = f32wav(tmp + '/d.wav'); s, r = vec('batch.decoded')
assert len(x) == 48000, len(x)
m = max(abs(a - b) for a, b in zip(x, r)); assert m <= 1e-4, m
print('max |diff| %.2e <= 1e-4' % m)"
run "encode with 4 codebooks" "$flm" codec encode "$g/mimi_input.wav" -o "$tmp/c4.npy" --model "$g/mimi_weights.safetensors" --n-q 4
cmp_py "n_q 4 == moshi nq4.codes" "$lib
h, c = npy(tmp + '/c4.npy'); s, r = vec('nq4.codes'); assert list(c) == list(r); print('4 x 25 identical')"
printf 'not audio' > "$tmp/x.wav"
if "$flm" codec encode "$tmp/x.wav" -o "$tmp/x.npy" --model "$g/mimi_weights.safetensors" >"$tmp/out" 2>&1; then bad "non-audio input refused"; else grep -q "not a recognized" "$tmp/out" && ok "non-audio input refused" || bad "non-audio message"; fi
printf 'junk' > "$tmp/j.npy"
if "$flm" codec decode "$tmp/j.npy" -o "$tmp/j.wav" --model "$g/mimi_weights.safetensors" >"$tmp/out" 2>&1; then bad "bad npy refused"; else grep -q "not a NumPy" "$tmp/out" && ok "bad npy refused" || bad "bad npy message"; fi
# flm render: a packed sample from a demo shard -> stereo wav (left listen, right speak)
run "demo shard" "$flm" demo --synthetic --out "$tmp/ds" --samples 1 --per-shard 1 --seed 2
run "render SHARD:0" "$flm" render "$tmp/ds/shards/000000.flms:0" -o "$tmp/r.wav" --model "$g/mimi_weights.safetensors"
frames=$(sed -n 's/.*: \([0-9]*\) frames.*/\1/p' "$tmp/out")
cmp_py "render: stereo, 24 kHz, 1920 samples per frame" "$lib
b = open(tmp + '/r.wav', 'rb').read()
ch, rate = struct.unpack('<HI', b[22:28]); i = b.index(b'data'); n = struct.unpack('<I', b[i + 4:i + 8])[0] // 8
assert ch == 2 and rate == 24000 and n == $frames * 1920 and n > 0, (ch, rate, n)
x = struct.unpack('<%df' % (2 * n), b[i + 8:i + 8 + 8 * n])
nz = [sum(1 for v in x[k::2] if v != 0) for k in (0, 1)]
assert nz[0] + nz[1] > 0, 'all silence'
print('%d frames; non-zero samples: listen %d, speak %d' % (n // 1920, nz[0], nz[1]))"
if "$flm" render "$tmp/ds/shards/000000.flms:7" -o "$tmp/r7.wav" --model "$g/mimi_weights.safetensors" >"$tmp/out" 2>&1; then bad "record out of range refused"; else ok "record out of range refused"; fi
if "$flm" render "$tmp/ds/shards/000000.flms" -o "$tmp/r7.wav" --model "$g/mimi_weights.safetensors" >"$tmp/out" 2>&1; then bad "SHARD without :N refused"; else grep -q "expected SHARD:N" "$tmp/out" && ok "SHARD without :N refused" || bad "SHARD:N message"; fi
echo "1..$n"
exit $fail
