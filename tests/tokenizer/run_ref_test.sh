#!/usr/bin/env bash
# meson test wrapper: installs the npm packages if missing, then runs the given test program.
set -euo pipefail
"$(dirname "$0")/fetch.sh"
exec "$@"
