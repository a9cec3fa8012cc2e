#!/usr/bin/env bash
# Installs (only) what is missing to build and test flmstream on Debian 12. Idempotent and quiet.
set -euo pipefail
pkgs=(
  build-essential meson ninja-build pkg-config clang clang-format python3
  libzstd-dev zstd libsqlite3-dev sqlite3 libjansson-dev libxxhash-dev zlib1g-dev
  libavformat-dev libavcodec-dev libavutil-dev libswresample-dev ffmpeg
  libopenblas-dev espeak-ng sox valgrind chromium chromium-driver python3-selenium
  python3-cffi python3-numpy python3-pytest python3-torch python3-pip python3-wheel python3-mesonpy python3-venv
  libutf8proc-dev nodejs openmpi-bin libopenmpi-dev
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v npm >/dev/null || missing+=(npm)  # tokenizer tests (a nodesource nodejs bundles npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "flmstream: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
