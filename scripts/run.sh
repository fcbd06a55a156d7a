#!/usr/bin/env bash
# Builds Sightline if needed and runs `sightline serve` with data in ./data.
# Extra arguments are passed to `sightline serve` (see `sightline --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec build/sightline serve --data-dir ./data --ui-dir ./ui-static "$@"
