#!/usr/bin/env bash
# README command (a): install what is missing, build, run the main job on the bundled data.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
tools/build.sh build
exec build/bin/flm demo "$@"
