#!/usr/bin/env bash
# Builds Sightline if needed and runs `sightline serve` with data in ./data.
# Extra arguments are passed to `sightline serve` (see `sightline --help`).
# `scripts/run.sh --fleet [options]` starts Sightline with the whole fleet
# instead (NATS, registry, services, gateway, load generator): scripts/fleet.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--fleet" ]; then
    shift
    exec scripts/fleet.sh "$@"
fi
scripts/setup.sh
exec build/sightline serve --data-dir ./data --ui-dir ./ui-static "$@"
