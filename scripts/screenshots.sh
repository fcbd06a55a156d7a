#!/usr/bin/env bash
# Regenerates docs/screenshots/*.png: runs the browser tests (tests/ui) against
# a fresh server filled over OTLP and saves each page as it is checked.
# Usage: scripts/screenshots.sh   (after scripts/setup.sh has built build/)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${SIGHTLINE_BUILD_DIR:-build}"
mkdir -p docs/screenshots
SIGHTLINE_SCREENSHOTS=docs/screenshots node tests/ui/e2e.mjs "$build/sightline" ui-static
