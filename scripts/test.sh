#!/usr/bin/env bash
# Everything CI runs: installs what is missing, builds with warnings as errors,
# runs the whole ctest suite, then builds and runs it again under
# AddressSanitizer + UndefinedBehaviorSanitizer. Ends with ctest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

scripts/setup.sh -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSIGHTLINE_WERROR=ON

echo "== sanitizer build (ASan+UBSan) =="
SIGHTLINE_BUILD_DIR=build-asan scripts/setup.sh -DCMAKE_BUILD_TYPE=Debug \
    -DSIGHTLINE_SANITIZE=ON -DSIGHTLINE_WERROR=ON
echo "== tests under ASan+UBSan =="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j "$jobs" --timeout 600

echo "== tests =="
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 600
