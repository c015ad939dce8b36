#!/usr/bin/env bash
# Sets up this checkout (scripts/setup.sh) and runs the whole test suite:
# unit tests, then integration tests against the real daemon inside private
# namespaces. Arguments select suites by path (e.g. `unit`, `integration/daemon`).
# The last line printed is `N passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! bash scripts/setup.sh; then
  printf '\n0 passed, 1 failed\n'
  exit 1
fi
exec node dist/test/run.js "$@"
