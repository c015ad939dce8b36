#!/usr/bin/env bash
# Sets up this checkout (scripts/setup.sh) and runs the Cradle daemon in the
# foreground with the embedded default config (or /etc/cradle/cradle.toml if
# present). Extra arguments go to `cradle daemon`, e.g. --log-level debug.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/node-flags.sh
# shellcheck disable=SC2086 # the flags are words
MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-$CRADLE_MALLOC_ARENA_MAX} exec node $CRADLE_NODE_FLAGS dist/bundle/cradle.js daemon "$@"
