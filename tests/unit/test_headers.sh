#!/usr/bin/env bash
# Every public header (flm_*.h of libstream, align, augment, packers, engine) compiles on its own,
# first in a translation unit, with the project's warnings as errors: a header that leans on what
# its includer happened to include first (size_t without <stddef.h>) fails here (issue 20).
# usage: test_headers.sh SOURCE_ROOT CC [CC ARGS...]
set -u
ROOT=$1; shift
. "$ROOT/tests/cli/tap.sh"
inc=()
for d in libstream align augment packers engine; do inc+=(-I"$ROOT/$d"); done
for h in "$ROOT"/{libstream,align,augment,packers,engine}/flm_*.h; do
    name=$(basename "$h")
    out=$(printf '#include "%s"\n#include "%s"\n' "$name" "$name" |
        "$@" -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Werror \
            -fsyntax-only "${inc[@]}" -x c - 2>&1)
    ok $? "${h#$ROOT/} compiles alone (and twice: its guard)"
    [ -z "$out" ] || echo "$out" | head -5 | sed 's/^/# /'
done
done_testing
