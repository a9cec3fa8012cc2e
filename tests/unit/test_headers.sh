#!/usr/bin/env bash
# Every public header (include/flm_*.h: libstream, align, augment, packers, engine) compiles on its
# own, first in a translation unit, with the project's warnings as errors and include/ the only
# include path: a header that leans on what its includer happened to include first (size_t without
# <stddef.h>) or on a module's internal header fails here (issue 20).
# usage: test_headers.sh SOURCE_ROOT CC [CC ARGS...]
set -u
ROOT=$1; shift
. "$ROOT/tests/cli/tap.sh"
inc=(-I"$ROOT/include")
for h in "$ROOT"/include/flm_*.h; do
    name=$(basename "$h")
    out=$(printf '#include "%s"\n#include "%s"\n' "$name" "$name" |
        "$@" -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Werror \
            -fsyntax-only "${inc[@]}" -x c - 2>&1)
    ok $? "${h#$ROOT/} compiles alone (and twice: its guard)"
    [ -z "$out" ] || echo "$out" | head -5 | sed 's/^/# /'
done
done_testing
