#!/usr/bin/env python3
"""Generates the bad-input corpus (issue 11, item 3) into OUT_DIR.

usage: make.py OUT_DIR FLM

Every file named in expected.tsv (beside this script) is made here from a few good inputs in
OUT_DIR/good/: audio by the ffmpeg CLI, a two-sample dataset by `flm demo`, a tiny Mimi
checkpoint by `flm model init`, the rest written directly. Only the Python standard library is
used: XXH3-64 (for inputs of 17..128 bytes) is reimplemented below so that a damaged shard can
carry valid checksums where the check under test sits behind them. tests/cli/test_bad_inputs.sh
runs each input through its command and compares exit status and message with expected.tsv.
"""
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys

OUT, FLM = sys.argv[1], sys.argv[2]

# --- XXH3-64 (seed 0, default secret) for 17..128-byte inputs: shard header, footer, small
# seek tables. Checked against a checksum written by flm itself before any use.
SECRET = bytes.fromhex(
    "b8fe6c3923a44bbe7c01812cf721ad1cded46de9839097db7240a4a4b7b3671f"
    "cb79e64eccc0e578825ad07dccff7221b8084674f743248ee03590e6813a264c"
    "3c2852bb91c300cb88d0658b1b532ea371644897a20df94e3819ef46a9deacd8"
    "a8fa763fe39c343ff9dcbbc7c70b4f1d8a51e04bcdb45931c89f7ec9d9787364")
M64 = (1 << 64) - 1


def _u64(b, o):
    return struct.unpack_from("<Q", b, o)[0]


def _mix16(b, o, s):
    p = (_u64(b, o) ^ _u64(SECRET, s)) * (_u64(b, o + 8) ^ _u64(SECRET, s + 8))
    return (p & M64) ^ (p >> 64)


def xxh3(b):
    n = len(b)
    assert 17 <= n <= 128, n
    acc = (n * 0x9E3779B185EBCA87) & M64
    if n > 32:
        if n > 64:
            if n > 96:
                acc += _mix16(b, 48, 96) + _mix16(b, n - 64, 112)
            acc += _mix16(b, 32, 64) + _mix16(b, n - 48, 80)
        acc += _mix16(b, 16, 32) + _mix16(b, n - 32, 48)
    acc = (acc + _mix16(b, 0, 0) + _mix16(b, n - 16, 16)) & M64
    acc ^= acc >> 37
    acc = (acc * 0x165667919E3779F9) & M64
    return acc ^ (acc >> 32)


def path(rel):
    p = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def put(rel, data):
    if isinstance(data, str):
        data = data.encode()
    if os.path.isfile(path(rel)):
        os.remove(path(rel))  # a rerun: unreadable.wav cannot be opened for writing
    with open(path(rel), "wb") as f:
        f.write(data)


def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def ffmpeg(out, *args):
    run("ffmpeg", "-nostdin", "-v", "error", "-y", *args, path(out))


def wav(fmt_tag, channels, rate, bits, data, data_size=None, extra_chunk=b""):
    """A RIFF/WAVE file; data_size overrides the data chunk's declared size."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra_chunk
    body += b"data" + struct.pack("<I", len(data) if data_size is None else data_size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def read(rel):
    with open(path(rel), "rb") as f:
        return bytearray(f.read())


# ------------------------------------------------------------------------------------------------
# good inputs the bad ones are made from (good/ is not part of the corpus)
ffmpeg("good/speech.wav", "-f", "lavfi", "-i", "sine=f=220:r=24000:d=3", "-c:a", "pcm_s16le")
ffmpeg("good/tone.flac", "-f", "lavfi", "-i", "sine=f=300:r=24000:d=2", "-c:a", "flac")
ffmpeg("good/tone.mp3", "-f", "lavfi", "-i", "sine=f=300:r=24000:d=2", "-c:a", "libmp3lame")
shutil.rmtree(path("good/ds"), ignore_errors=True)
run(FLM, "demo", "--synthetic", "--out", path("good/ds"), "--samples", "2", "--per-shard", "2", "--seed", "5")
run(FLM, "model", "init", "--arch", "mimi", "--size", "tiny", "--seed", "1", "-o",
    path("good/mimi.safetensors"))
for d in ("good/lm", "good/lm_q4"):
    shutil.rmtree(path(d), ignore_errors=True)
run(FLM, "model", "init", "--arch", "flm", "--size", "tiny", "--seed", "1", "-o", path("good/lm"))
run(FLM, "model", "quantize", "--model", path("good/lm"), "--weights", "q4", "-o",
    path("good/lm_q4"))
pcm = b"".join(struct.pack("<f", 0.25 * ((i % 48) / 24.0 - 1.0)) for i in range(24000))

# --- audio ---------------------------------------------------------------------------------------
# good wavs the checks below must not refuse: float samples, and the length placeholders of
# writers streaming to a pipe (SoX: a fact chunk of 0x1ffffc00 samples and data of 0x7ffff000
# bytes less its header; FFmpeg: 0xffffffff)
put("good/float.wav", wav(3, 1, 24000, 32, pcm))
put("good/streamed_sox.wav", wav(3, 1, 24000, 32, pcm, data_size=0x7ffff000 - 0x50,
                                 extra_chunk=b"fact" + struct.pack("<II", 4, 0x1ffffc00)))
put("good/streamed_ffmpeg.wav", wav(1, 1, 24000, 16, bytes(48000), data_size=0xFFFFFFFF))
put("audio/empty.wav", b"")
put("audio/text.mp3", "this is not audio, just a line of text\n" * 4)
put("audio/random.flac", bytes((i * 131 + 7) % 251 for i in range(5000)))
put("audio/wrong_magic.wav", b"RIFX" + wav(3, 1, 24000, 32, pcm)[4:])
put("audio/header_only.wav", wav(3, 1, 24000, 32, b""))
put("audio/truncated_sample.wav", wav(3, 1, 24000, 32, pcm)[:-20002])  # cut mid-sample
put("audio/truncated_aligned.wav", wav(3, 1, 24000, 32, pcm)[:-48000])  # cut between samples
put("audio/huge_data_size.wav", wav(3, 1, 24000, 32, pcm, data_size=0x10000000))  # 256 MB
put("audio/huge_list_chunk.wav",
    wav(3, 1, 24000, 32, pcm, extra_chunk=b"LIST" + struct.pack("<I", 0x7FFFFFF0) + b"INFO"))
put("audio/nan.wav", wav(3, 1, 24000, 32, pcm[:4000] + struct.pack("<f", float("nan")) * 50
                         + pcm[4200:]))
put("audio/inf.wav", wav(3, 1, 24000, 32, pcm[:400] + struct.pack("<f", float("inf")) + pcm[404:]))
put("audio/unsupported_codec.wav", wav(0x5555, 1, 24000, 16, bytes(4800)))
put("audio/rate_1hz.wav", wav(1, 1, 1, 16, bytes(4800)))
put("audio/zero_channels.wav", wav(1, 0, 24000, 16, bytes(4800)))
ffmpeg("audio/video_only.mp4", "-f", "lavfi", "-i", "testsrc=d=0.5:s=32x32:r=5", "-c:v", "mpeg4")
d = read("good/tone.flac")
put("audio/truncated.flac", d[:len(d) // 2])
d = read("good/tone.mp3")
put("audio/truncated.mp3", d[:len(d) // 2])
os.makedirs(path("audio/directory.wav"), exist_ok=True)
put("audio/unreadable.wav", read("good/speech.wav"))
os.chmod(path("audio/unreadable.wav"), 0)

# --- transcripts ---------------------------------------------------------------------------------
def whisper(segs):
    return json.dumps({"language": "en", "segments": segs})


def seg(start, end, text="Hello there, how are you?"):
    return {"start": start, "end": end, "text": text}


# one good transcript per importer: the batch runs of the test mix them with the bad ones
put("good/whisper.json", whisper([seg(0.1, 1.4, "Good morning."), seg(1.5, 2.9, "Nice day.")]))
put("good/funasr.json", json.dumps({"key": "utt", "sentence_info": [
    {"text": "Good morning.", "start": 100, "end": 1400}]}))
put("good/srt.srt", "1\n00:00:00,100 --> 00:00:01,400\nGood morning.\n")
put("good/vtt.vtt", "WEBVTT\n\n00:00.100 --> 00:01.400\nGood morning.\n")
put("good/moshi.json", '{"alignments": [["Good", [0.1, 0.5], "SPEAKER_MAIN"], '
    '["morning.", [0.6, 1.4], "SPEAKER_MAIN"]]}')
put("good/jsonl.jsonl", json.dumps({"id": "good", "audio": "speech.wav", "segments": [
    {"start": 0.1, "end": 1.4, "text": "Good morning."}]}) + "\n")
put("whisper/empty.json", b"")
put("whisper/no_segments.json", whisper([]))
put("whisper/malformed.json", '{"segments": [{"start": 0.0, "end": 1.0, "text": "Hi."}')
put("whisper/not_object.json", "[1, 2, 3]")
put("whisper/segments_not_array.json", '{"segments": "0.0 --> 1.0 Hello."}')
put("whisper/start_is_string.json", '{"segments": [{"start": "0.0", "end": 1.0, "text": "Hi there."}]}')
put("whisper/negative_time.json", whisper([seg(-1.0, 1.0)]))
put("whisper/reversed_time.json", whisper([seg(2.0, 1.0)]))
put("whisper/overlap.json", whisper([seg(0.0, 2.0), seg(1.0, 2.5, "And then more words.")]))
put("whisper/empty_text.json", whisper([seg(0.0, 1.0, "  ")]))
put("whisper/music_only.json", whisper([seg(0.0, 1.0, "\u266a \u266a")]))
put("whisper/end_past_audio.json", whisper([seg(0.5, 30.0)]))
put("whisper/absurd_time.json", whisper([seg(0.5, 1e12)]))
put("whisper/invalid_utf8.json", b'{"segments": [{"start": 0.0, "end": 1.0, "text": "caf\xe9"}]}')


def funasr(sents, key="utt"):
    return json.dumps({"key": key, "sentence_info": sents})


put("funasr/malformed.json", '{"key": "a", "sentence_info": [')
put("funasr/not_object.json", '"just a string"')
put("funasr/info_not_array.json", '{"key": "a", "sentence_info": {"text": "Hi."}}')
put("funasr/text_is_number.json", funasr([{"text": 42, "start": 0, "end": 1000}]))
put("funasr/reversed_time.json", funasr([{"text": "Hello there.", "start": 1500, "end": 500}]))
put("funasr/negative_time.json", funasr([{"text": "Hello there.", "start": -500, "end": 500}]))
put("funasr/end_past_audio.json", funasr([{"text": "Hello there.", "start": 0, "end": 60000}]))
put("funasr/empty_array.json", "[]\n")
put("funasr/empty_text.json", funasr([{"text": "", "start": 0, "end": 1000}]))

put("srt/empty.srt", b"")
put("srt/bad_timing.srt", "1\n00:00:00,000 -> 00:00:01,000\nHello there.\n")
put("srt/reversed_time.srt", "1\n00:00:02,000 --> 00:00:01,000\nHello there.\n")
put("srt/overlap.srt", "1\n00:00:00,000 --> 00:00:02,000\nHello there.\n\n"
    "2\n00:00:01,000 --> 00:00:02,500\nHow are you?\n")
put("srt/invalid_utf8.srt", b"1\n00:00:00,000 --> 00:00:01,000\nHello \xff\xfe there.\n")
put("srt/empty_cue.srt", "1\n00:00:00,000 --> 00:00:01,000\n...\n")
put("srt/end_past_audio.srt", "1\n00:00:00,000 --> 00:01:00,000\nHello there.\n")
put("srt/no_timing.srt", "1\nHello there.\n")
put("srt/minutes_61.srt", "1\n00:61:00,000 --> 00:62:00,000\nHello there.\n")

put("vtt/no_header.vtt", "00:00.000 --> 00:01.000\nHello there.\n")
put("vtt/reversed_time.vtt", "WEBVTT\n\n00:02.000 --> 00:01.000\nHello there.\n")
put("vtt/bad_timestamp.vtt", "WEBVTT\n\n00:0x.000 --> 00:01.000\nHello there.\n")
put("vtt/invalid_utf8.vtt", b"WEBVTT\n\n00:00.000 --> 00:01.000\nHello \xc3 there.\n")
put("vtt/end_past_audio.vtt", "WEBVTT\n\n00:00.000 --> 10:00.000\nHello there.\n")
put("vtt/empty_cue.vtt", "WEBVTT\n\n00:00.000 --> 00:01.000\n<i></i>\n")

put("moshi/no_alignments.json", '{"alignments": []}')
put("moshi/malformed.json", '{"alignments": [["Hello", [0.0, 0.5], "SPEAKER_MAIN"]')
put("moshi/alignments_not_array.json", '{"alignments": {"Hello": [0, 1]}}')
put("moshi/word_not_array.json", '{"alignments": ["Hello"]}')
put("moshi/times_not_numbers.json", '{"alignments": [["Hello", ["a", "b"], "SPEAKER_MAIN"]]}')
put("moshi/reversed_time.json", '{"alignments": [["Hello.", [0.5, 0.2], "SPEAKER_MAIN"]]}')
put("moshi/negative_time.json", '{"alignments": [["Hello", [-0.5, 0.2], "SPEAKER_MAIN"], '
    '["there.", [0.3, 0.9], "SPEAKER_MAIN"]]}')
put("moshi/end_past_audio.json", '{"alignments": [["Hello", [0.1, 0.5], "SPEAKER_MAIN"], '
    '["there.", [0.6, 40.0], "SPEAKER_MAIN"]]}')


def line(**kw):
    return json.dumps(kw) + "\n"


def manifest(rel, *lines):
    """A manifest whose ids are its file stem (unique across the batch run of the test)."""
    stem = os.path.splitext(os.path.basename(rel))[0]
    put(rel, "".join(ln.replace('"id": "x"', '"id": "%s"' % stem) for ln in lines))


GOOD = "../good/speech.wav"
put("jsonl/blank_lines.jsonl", "\n  \n\n")
put("jsonl/not_json.jsonl", "{not json at all}\n")
put("jsonl/invalid_utf8.jsonl", b'{"id": "x", "audio": "../good/speech.wav", "text": "caf\xe9."}\n')
manifest("jsonl/wrong_type.jsonl", line(id="x", audio=GOOD, segments="Hello there."))
manifest("jsonl/missing_audio_field.jsonl", line(id="x", text="Hello there."))
manifest("jsonl/audio_not_found.jsonl", line(id="x", audio="../good/nowhere.wav", text="Hello there."))
manifest("jsonl/audio_is_text.jsonl", line(id="x", audio="../audio/text.mp3", text="Hello there."))
manifest("jsonl/bad_channel.jsonl", line(id="x", audio=GOOD, channel=4, text="Hello there."))
manifest("jsonl/duplicate_id.jsonl", line(id="x", audio=GOOD, text="Hello there."),
         line(id="x", audio=GOOD, text="Hello again."))
manifest("jsonl/reversed_time.jsonl", line(id="x", audio=GOOD, segments=[seg(2.0, 1.0)]))
manifest("jsonl/negative_time.jsonl", line(id="x", audio=GOOD, segments=[seg(-2.0, 1.0)]))
manifest("jsonl/end_past_audio.jsonl", line(id="x", audio=GOOD, segments=[seg(1.0, 9.0)]))
manifest("jsonl/empty_text.jsonl", line(id="x", audio=GOOD, segments=[seg(0.0, 1.0, "")]))
manifest("jsonl/time_is_string.jsonl", line(id="x", audio=GOOD, segments=[seg("0", 1.0)]))
manifest("jsonl/speaking_rate.jsonl", line(id="x", audio=GOOD, segments=[seg(
    0.0, 0.1, "This segment has far too many words to be spoken in a tenth of a second.")]))
# every bad audio file through a manifest: a batch job quarantines each with flm_audio's message
audio_rows = sorted(f for f in os.listdir(path("audio")))
put("jsonl/audio_batch.jsonl", line(id="good", audio=GOOD, text="Hello there. How are you?")
    + line(id="missing.wav", audio="../audio/missing.wav", text="Hello there.")
    + "".join(line(id=f, audio="../audio/" + f, text="Hello there.") for f in audio_rows
              if f != "unreadable.wav" or os.getuid() != 0))

# --- shards --------------------------------------------------------------------------------------
shard = read("good/ds/shards/000000.flms")
hsize = struct.unpack_from("<I", shard, 12)[0]
if xxh3(bytes(shard[:hsize - 8])) != _u64(shard, hsize - 8):
    sys.exit("make.py: the XXH3 reimplementation disagrees with flm's shard header checksum")
tab, n_rec = _u64(shard, len(shard) - 40), _u64(shard, len(shard) - 32)


def reseal(b):
    """Recomputes the header, seek table and footer checksums after a change."""
    b[hsize - 8:hsize] = struct.pack("<Q", xxh3(bytes(b[:hsize - 8])))
    f = len(b) - 40
    t, n = _u64(b, f), _u64(b, f + 8)
    b[f + 16:f + 24] = struct.pack("<Q", xxh3(bytes(b[t:t + 40 * n])))
    b[f + 24:f + 32] = struct.pack("<Q", xxh3(bytes(b[f:f + 24])))
    return b


def damaged(fn):
    b = bytearray(shard)
    fn(b)
    return b


put("shard/empty.flms", b"")
put("shard/text.flms", "not a shard, only text " * 8)
put("shard/too_short.flms", shard[:30])
put("shard/truncated_half.flms", shard[:len(shard) // 2])
put("shard/no_last_byte.flms", shard[:-1])
put("shard/wrong_magic.flms", damaged(lambda b: b.__setitem__(slice(0, 8), b"FLMSHRD2")))
put("shard/future_version.flms", damaged(lambda b: b.__setitem__(slice(8, 12), struct.pack("<I", 7))))
put("shard/header_flipped.flms", damaged(lambda b: b.__setitem__(30, b[30] ^ 0x10)))
put("shard/header_size_absurd.flms",
    damaged(lambda b: b.__setitem__(slice(12, 16), struct.pack("<I", 1 << 30))))
put("shard/record_version.flms", reseal(damaged(
    lambda b: b.__setitem__(slice(16, 20), struct.pack("<I", 9)))))
put("shard/record_flipped.flms", damaged(lambda b: b.__setitem__(hsize + 100, b[hsize + 100] ^ 1)))
put("shard/seek_table_flipped.flms", damaged(lambda b: b.__setitem__(tab + 13, b[tab + 13] ^ 4)))
put("shard/seek_offset_lies.flms", reseal(damaged(
    lambda b: b.__setitem__(slice(tab + 40, tab + 48), struct.pack("<Q", _u64(b, tab + 40) + 8)))))
put("shard/footer_count_lies.flms", reseal(damaged(
    lambda b: b.__setitem__(slice(len(b) - 32, len(b) - 24), struct.pack("<Q", 1000)))))
put("shard/footer_flipped.flms", damaged(lambda b: b.__setitem__(len(b) - 35, b[len(b) - 35] ^ 8)))
os.makedirs(path("shard/directory.flms"), exist_ok=True)
put("shard/good_two_records.flms", shard)  # asked for a record number beyond 64 bits

# --- indexes -------------------------------------------------------------------------------------
def dataset(rel):
    d = path(rel)
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(path("good/ds"), d)
    return d


put("index/not_sqlite/index.sqlite", "SQLite format 3? no, just text\n" * 10)
put("index/empty/index.sqlite", b"")
p = path("index/other_schema/index.sqlite")
if os.path.exists(p):
    os.remove(p)
with sqlite3.connect(p) as db:
    db.execute("CREATE TABLE songs (title TEXT, artist TEXT)")
    db.execute("INSERT INTO songs VALUES ('x', 'y')")
db.close()
shutil.rmtree(path("index/other_schema_align"), ignore_errors=True)
shutil.copytree(path("index/other_schema"), path("index/other_schema_align"))
d = dataset("index/future_version")
db = sqlite3.connect(os.path.join(d, "index.sqlite"))
db.execute("PRAGMA user_version = 99")
db.close()
d = dataset("index/missing_shards")
shutil.rmtree(os.path.join(d, "shards"))
d = dataset("index/record_out_of_range")
db = sqlite3.connect(os.path.join(d, "index.sqlite"))
with db:
    db.execute("UPDATE samples SET record = 7 WHERE record = 1")
db.close()
d = dataset("index/truncated")
ix = os.path.join(d, "index.sqlite")
for suffix in ("-wal", "-shm"):
    if os.path.exists(ix + suffix):
        os.remove(ix + suffix)
with open(ix, "rb") as f:
    head = f.read(2048)
with open(ix, "wb") as f:
    f.write(head)

# --- safetensors checkpoints ----------------------------------------------------------------------
ck = read("good/mimi.safetensors")
hlen = _u64(ck, 0)
hdr = json.loads(ck[8:8 + hlen])
body = bytes(ck[8 + hlen:])
first = next(k for k in hdr if k != "__metadata__")


def checkpoint(rel, fn):
    h = json.loads(json.dumps(hdr))
    fn(h)
    t = json.dumps(h, separators=(",", ":")).encode()
    t += b" " * (-len(t) % 8)
    put(rel, struct.pack("<Q", len(t)) + t + body)


def set_(h, key, field, value):
    h[key][field] = value


checkpoint("ckpt/offsets_past_end.safetensors",
           lambda h: set_(h, first, "data_offsets", [0, len(body) + 4096]))
checkpoint("ckpt/offsets_disagree_shape.safetensors",
           lambda h: set_(h, first, "data_offsets", [0, 4]))
second = [k for k in hdr if k != "__metadata__"][1]
checkpoint("ckpt/offsets_overlap.safetensors",
           lambda h: set_(h, second, "data_offsets", [192, 192 + h[second]["data_offsets"][1]
                                                       - h[second]["data_offsets"][0]]))
checkpoint("ckpt/unknown_dtype.safetensors", lambda h: set_(h, first, "dtype", "F31"))
checkpoint("ckpt/integer_dtype.safetensors", lambda h: set_(h, first, "dtype", "I32"))
checkpoint("ckpt/wrong_shape.safetensors",
           lambda h: set_(h, first, "shape", list(reversed(h[first]["shape"]))))
checkpoint("ckpt/missing_tensor.safetensors", lambda h: h.pop(first))
checkpoint("ckpt/shape_negative.safetensors", lambda h: set_(h, first, "shape", [-8, 1, 7]))
put("ckpt/truncated.safetensors", ck[:len(ck) // 2])
put("ckpt/header_length_absurd.safetensors", struct.pack("<Q", 1 << 62) + ck[8:4096])
put("ckpt/header_not_json.safetensors", struct.pack("<Q", 16) + b"{not json here!}" + body[:64])
put("ckpt/too_short.safetensors", b"\x10\x00\x00")
# a size that overflows 64 bits, with data_offsets that look fine
checkpoint("ckpt/size_overflows.safetensors",
           lambda h: set_(h, first, "shape", [1 << 40, 1 << 40]))


def poisoned(data, name, element, value):
    """data (a safetensors image) with element `element` of tensor `name` set to `value`
    (bytes of the tensor's dtype)."""
    b = bytearray(data)
    n = _u64(b, 0)
    at = 8 + n + json.loads(b[8:8 + n])[name]["data_offsets"][0] + element * len(value)
    b[at:at + len(value)] = value
    return b


# weights that are not finite (issue 18): a checkpoint of NaN is "valid" and computes garbage
nan_f32 = struct.pack("<f", float("nan"))
b = bytearray(ck)
for k, v in hdr.items():
    if k != "__metadata__":
        lo, hi = v["data_offsets"]
        b[8 + hlen + lo:8 + hlen + hi] = nan_f32 * ((hi - lo) // 4)
put("ckpt/nan_weights.safetensors", b)
put("ckpt/inf_weight.safetensors",
    poisoned(ck, "decoder.model.12.block.1.conv.conv.weight", 14, struct.pack("<f", float("inf"))))


def lm_copy(rel, src, name=None, element=0, value=b""):
    """A copy of the LM checkpoint directory src (config.json + model.safetensors), with one
    element poisoned when name is given (otherwise the weights are linked, not copied)."""
    shutil.rmtree(path(rel), ignore_errors=True)
    os.makedirs(path(rel))
    shutil.copy(path(src + "/config.json"), path(rel + "/config.json"))
    if name:
        put(rel + "/model.safetensors",
            poisoned(read(src + "/model.safetensors"), name, element, value))
    else:
        os.link(path(src + "/model.safetensors"), path(rel + "/model.safetensors"))


lm_copy("ckpt/lm_nan_bf16", "good/lm", "model.layers.1.self_attn.q_proj.weight", 70,
        struct.pack("<H", 0x7fc1))
lm_copy("ckpt/lm_inf_q4_scale", "good/lm_q4", "model.layers.0.mlp.up_proj.weight.qscale", 3,
        struct.pack("<f", float("-inf")))
# not a Mimi: an LM directory, an empty directory, no file at all (flm codec --model)
lm_copy("ckpt/lm_dir", "good/lm")
shutil.rmtree(path("ckpt/empty_dir"), ignore_errors=True)
os.makedirs(path("ckpt/empty_dir"))

# --- codes.npy (flm codec decode) ----------------------------------------------------------------
def npy(header, data):
    h = repr(header).encode() if isinstance(header, dict) else header
    h += b" " * (-(10 + len(h) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data


codes = struct.pack("<80i", *[(i * 37) % 2048 for i in range(80)])  # (8, 10)
C_ORDER = {"descr": "<i4", "fortran_order": False, "shape": (8, 10)}
put("good/codes.npy", npy(C_ORDER, codes))
put("npy/code_too_large.npy", npy(C_ORDER, struct.pack("<i", 5000) + codes[4:]))
put("npy/code_negative.npy", npy(C_ORDER, codes[:40] + struct.pack("<i", -3) + codes[44:]))
put("npy/code_empty_token.npy", npy(C_ORDER, codes[:8] + struct.pack("<i", 2049) + codes[12:]))
put("npy/truncated.npy", npy(C_ORDER, codes)[:-7])
put("npy/float_dtype.npy", npy(dict(C_ORDER, descr="<f4"), codes))
put("npy/fortran_order.npy", npy(dict(C_ORDER, fortran_order=True), codes))
put("npy/shape_lies.npy", npy(dict(C_ORDER, shape=(8, 99999999999)), codes))
put("npy/too_many_codebooks.npy", npy(dict(C_ORDER, shape=(80, 1)), codes))
put("npy/not_npy.npy", "8 10\n" + " ".join(["0"] * 80) + "\n")

# --- profiles, recipes, tokenizer.json -----------------------------------------------------------
recipe = {"kind": "recipe", "name": "bad", "version": 1, "stage": "post-training-1", "seed": 1,
          "formats": {"tts": 0.5, "asr": 0.5}, "corpus_weights": {"*": 1.0},
          "packing": {"lead": 2, "lag": 0, "silence_min_s": 0.08, "silence_max_s": 3.0,
                      "sample_frames": 8192},
          "loss_weights": {"semantic": 1.0, "acoustic": 0.5, "monologue": 1.0, "wait": 0.01}}


def edited(base, path_, value):
    o = json.loads(json.dumps(base))
    cur = o
    for k in path_[:-1]:
        cur = cur[k]
    if value is KeyError:
        del cur[path_[-1]]
    else:
        cur[path_[-1]] = value
    return json.dumps(o, indent=1) + "\n"


put("recipe/malformed.json", '{"kind": "recipe", "name": "x",\n  "packing": {"lead": 2,}\n}\n')
put("recipe/empty.json", b"")
put("recipe/unknown_key.json", edited(recipe, ["packing", "leed"], 2))
put("recipe/wrong_type.json", edited(recipe, ["packing", "lead"], "two"))
put("recipe/lead_out_of_range.json", edited(recipe, ["packing", "lead"], 5))
put("recipe/negative_weight.json", edited(recipe, ["loss_weights", "wait"], -1.0))
put("recipe/wrong_kind.json", edited(recipe, ["kind"], "profile"))

vocab = {"kind": "vocab", "name": "bad", "version": 1, "text_vocab_size": 152064,
         "text_wait": 151665, "text_asr": 151666, "text_answer": 151667, "text_pad": 3,
         "text_epad": 0}
put("profile/malformed.json", '{"kind": "vocab", "text_wait": 151665')
put("profile/unknown_key.json", edited(vocab, ["text_waitt"], 151665))
put("profile/wrong_type.json", edited(vocab, ["text_wait"], "151665"))
put("profile/out_of_range.json", edited(vocab, ["text_wait"], 999999))
put("profile/not_object.json", "[]\n")
SCHEMAS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "schemas")
for kind, src in (("codec", "codec-mimi.json"), ("model", "model-flm-audio.json")):
    with open(os.path.join(SCHEMAS, "profiles", src), "rb") as f:
        put("profile/%s_kind.json" % kind, f.read())  # valid, but not the vocab profile asked for

BYTES = [chr(c) for c in range(33, 127)] + [chr(c) for c in range(161, 173)] + [
    chr(c) for c in range(174, 256)]
BYTES += [chr(256 + i) for i in range(256 - len(BYTES))]
tokenizer = {
    "version": "1.0", "truncation": None, "padding": None,
    "added_tokens": [{"id": 256, "content": "<|endoftext|>", "single_word": False,
                      "lstrip": False, "rstrip": False, "normalized": False, "special": True}],
    "normalizer": {"type": "NFC"},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?"
                                      "\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
                                      "\\s+(?!\\S)|\\s+"},
         "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
    "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                       "use_regex": False},
    "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                "use_regex": False},
    "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
              "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
              "ignore_merges": False, "vocab": {b: i for i, b in enumerate(sorted(BYTES))},
              "merges": []}}
put("good/tokenizer.json", json.dumps(tokenizer))
put("tokenizer/malformed.json", '{"model": {"type": "BPE", "vocab": {"a": 0}')
put("tokenizer/empty.json", b"")
put("tokenizer/no_model.json", edited(tokenizer, ["model"], KeyError))
put("tokenizer/not_bpe.json", edited(tokenizer, ["model", "type"], "WordPiece"))
put("tokenizer/vocab_wrong_type.json", edited(tokenizer, ["model", "vocab"], [1, 2]))
put("tokenizer/duplicate_id.json", edited(tokenizer, ["model", "vocab", "A"], 0))
put("tokenizer/merge_unknown.json", edited(tokenizer, ["model", "merges"], ["Q zz"]))
put("tokenizer/added_bad_id.json", edited(tokenizer, ["added_tokens", 0, "id"], -4))
put("tokenizer/pre_tokenizer_other.json", edited(tokenizer, ["pre_tokenizer", "type"], "Whitespace"))
