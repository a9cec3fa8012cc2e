#!/usr/bin/env bash
# The Python package stands alone: in a fresh virtual environment (--system-site-packages, so
# Debian's numpy, cffi and meson-python are visible; no network), `pip install
# --no-build-isolation ./python` builds and bundles the reader's library; outside the source
# tree, with no FLMSTREAM_LIB, `import flmstream` reads a dataset made by `flm demo
# --synthetic`. Also: a wheel built from ./python holds the library, which links none of FFmpeg,
# OpenBLAS, OpenMP or utf8proc, and FLMSTREAM_LIB still overrides it.
#   python/tests/install_check.sh FLM     (FLM: path of the flm binary, to make the dataset)
# Prints "install check: ok" and exits 0, or says what failed and exits 1.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
flm=$(realpath "${1:?usage: install_check.sh FLM}")
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "install check: FAILED: $*"; exit 1; }
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1
unset FLMSTREAM_LIB PYTHONPATH

FLM_PROGRESS=0 "$flm" demo --synthetic --out "$work/data" --samples 40 --per-shard 10 \
  --max-frames 900 --seed 3 >/dev/null || fail "flm demo --synthetic"

"$py" -m venv --system-site-packages "$work/venv" || fail "python3 -m venv"
vpy=$work/venv/bin/python
(cd "$root" && "$vpy" -m pip install -q --no-build-isolation --no-index ./python) \
  >"$work/pip.log" 2>&1 || { cat "$work/pip.log"; fail "pip install --no-build-isolation ./python"; }

cd "$work"  # outside the source tree: only the installed package can be imported
out=$("$vpy" -c "import flmstream, flmstream._lib as L; ds = flmstream.Dataset('$work/data', frames=None); print(len(ds)); print(L.path); print(flmstream.__file__)") ||
  fail "import flmstream / read the dataset in the venv"
n=$(sed -n 1p <<<"$out"); lib=$(sed -n 2p <<<"$out"); mod=$(sed -n 3p <<<"$out")
[ "$n" = 40 ] || fail "len(ds) is $n, expected 40"
case "$mod" in "$work/venv/"*) ;; *) fail "flmstream imported from $mod, not the venv" ;; esac
case "$lib" in "$work/venv/"*/flmstream/libflmstream-reader.so) ;;
  *) fail "the library loaded is $lib, not the bundled one" ;; esac
deps=$(ldd "$lib")
if grep -Ei 'libav|libsw|openblas|blas|gomp|omp|utf8proc' <<<"$deps"; then
  fail "the bundled library links the above"
fi
grep -q libzstd <<<"$deps" && grep -q libsqlite3 <<<"$deps" || fail "ldd: $deps"

# FLMSTREAM_LIB still overrides the bundled library (a file that is no library: import fails)
FLMSTREAM_LIB=$work/data/index.sqlite "$vpy" -c "import flmstream" >/dev/null 2>&1 &&
  fail "FLMSTREAM_LIB pointing at a non-library was not used"

# the wheel
(cd "$root" && "$py" -m pip wheel -q --no-build-isolation --no-deps --no-index -w "$work/wheel" \
  ./python) >"$work/wheel.log" 2>&1 || { cat "$work/wheel.log"; fail "pip wheel ./python"; }
whl=$(ls "$work"/wheel/flmstream-*.whl)
mkdir "$work/unz" && (cd "$work/unz" && "$py" -m zipfile -e "$whl" .)
[ -f "$work/unz/flmstream/libflmstream-reader.so" ] && [ -f "$work/unz/flmstream/batching.py" ] ||
  fail "the wheel lacks flmstream/libflmstream-reader.so or batching.py"
if ldd "$work/unz/flmstream/libflmstream-reader.so" | grep -Ei 'libav|libsw|openblas|gomp|utf8proc'; then
  fail "the wheel's library links the above"
fi
echo "install check: ok (venv install read $n samples; wheel $(basename "$whl"))"
