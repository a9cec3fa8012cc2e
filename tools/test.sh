#!/usr/bin/env bash
# README command (b): install what is missing, build, and run every test twice: in the normal
# build (-Werror), its unit suite again under valgrind memcheck, and in an AddressSanitizer +
# UndefinedBehaviorSanitizer build. Also checks the formatting of the C sources.
# Ends with the line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh || exit 1
passed=0; failed=0

count() { # $1 = meson test log (json): adds its results to the totals
  local log="$1" p f
  [ -f "$log" ] || { failed=$((failed + 1)); return; }
  p=$(python3 -c 'import json,sys; r=[json.loads(l)["result"] for l in open(sys.argv[1])]; print(sum(x in ("OK","EXPECTEDFAIL","SKIP") for x in r), sum(x not in ("OK","EXPECTEDFAIL","SKIP") for x in r))' "$log")
  passed=$((passed + ${p% *})); failed=$((failed + ${p#* }))
}

# Sanitizer builds run several times slower than the normal one, and the machine may be busy:
# their timeouts are scaled (no test asserts on wall-clock speed; a timeout only stops a hang).
ASAN_TIMEOUT_MULTIPLIER=${ASAN_TIMEOUT_MULTIPLIER:-4}

run_suite() { # $1 = build dir, $2 = label, $3 = timeout multiplier, rest = meson setup options
  local dir=$1 label=$2 mult=$3; shift 3
  if ! tools/build.sh "$dir" "$@"; then echo "$label: build failed"; failed=$((failed + 1)); return; fi
  rm -f "$dir/meson-logs/testlog.json"
  if meson test -C "$dir" --num-processes 2 --timeout-multiplier "$mult" --print-errorlogs \
      >"$dir/test.log" 2>&1; then
    echo "$label: $(grep -E '^Ok:' "$dir/test.log" | tr -s ' ') tests ok"
  else
    echo "$label: FAILED"; grep -E '^ *[0-9]+/[0-9]+ .*(FAIL|ERROR|TIMEOUT)' "$dir/test.log"
    grep -E '^(not ok|#)' "$dir/meson-logs/testlog.txt" | head -40
  fi
  count "$dir/meson-logs/testlog.json"
}

run_suite build "build (-Werror)" 1 -Dwerror=true

# the unit suite once more under valgrind memcheck (FLM_TEST_FAST trims the exhaustive loops;
# the "heavy" tests -- Mimi, audio decode, augmentation, the LM, and what links FFmpeg -- run under
# ASan only)
rm -f build/meson-logs/testlog-valgrind.json
if meson test -C build --setup valgrind --suite unit --no-suite heavy --num-processes 2 \
    >build/test-valgrind.log 2>&1; then
  echo "valgrind (unit suite): $(grep -E '^Ok:' build/test-valgrind.log | tr -s ' ') tests ok"
else
  echo "valgrind (unit suite): FAILED"; grep -E '^ *[0-9]+/[0-9]+ .*(FAIL|ERROR|TIMEOUT)' build/test-valgrind.log
  grep -E '==[0-9]+==|^not ok' build/meson-logs/testlog-valgrind.txt | head -40
fi
count build/meson-logs/testlog-valgrind.json
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
run_suite build-asan "build-asan (ASan+UBSan)" "$ASAN_TIMEOUT_MULTIPLIER" -Db_sanitize=address,undefined -Db_lundef=false

# the Python package on its own: a fresh venv, pip install --no-build-isolation ./python (the
# reader's library built and bundled by meson-python), import and read outside the tree: one check
if out=$(python/tests/install_check.sh build/bin/flm 2>&1); then passed=$((passed + 1)); echo "$out"
else failed=$((failed + 1)); echo "$out" | tail -20; fi

# -Dengine=disabled: the libraries build without OpenBLAS and OpenMP, no flm program, and the
# shared library needs neither: one check
if tools/build.sh build-noengine -Dengine=disabled -Dwerror=true >/dev/null 2>&1 \
    && [ ! -e build-noengine/bin/flm ] && [ -e build-noengine/libflmstream.so ] \
    && ! readelf -d build-noengine/libflmstream.so | grep NEEDED | grep -Eq 'openblas|gomp'; then
  passed=$((passed + 1)); echo "build without the engine: ok"
else failed=$((failed + 1)); echo "build without the engine: FAILED (tools/build.sh build-noengine -Dengine=disabled)"; fi

# formatting (.clang-format): one check
bad=$(git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror 2>&1 | grep -c 'error:' || true)
if [ "$bad" = 0 ]; then passed=$((passed + 1)); echo "clang-format: ok"
else failed=$((failed + 1)); echo "clang-format: $bad formatting differences (run clang-format -i)"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
