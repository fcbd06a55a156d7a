#!/usr/bin/env bash
# Everything CI runs: installs what is missing; builds and runs the whole ctest
# suite under AddressSanitizer + UndefinedBehaviorSanitizer, the integration
# tests against a ThreadSanitizer build, then the whole suite in the normal
# build (warnings are errors everywhere); every libFuzzer target runs for a few
# seconds. Ends with ctest's summary.
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

echo "== every fuzz target for a short bounded time (clang libFuzzer, ASan+UBSan) =="
# Longer runs: scripts/fuzz.sh SECONDS; figures in bench/RESULTS.md.
scripts/fuzz.sh "${SIGHTLINE_FUZZ_SECONDS:-8}"

echo "== integration tests against a ThreadSanitizer build (clang) =="
# The collector hands requests between the loop, the decode pool, the writer
# and back; storage between the writer, the cutter and readers. A race report
# makes the server exit non-zero, which the integration tests check.
CC=clang cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_FLAGS="-fsanitize=thread -O1" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" \
    >/dev/null
cmake --build build-tsan --target sightline otlp-gen promql_eval_tool sdk-it-driver test_metrics_storage \
    sl-example-server sl-example-client fleet-echo fleet-registry fleet-gateway fleet-loadgen \
    fleet-auth fleet-users fleet-tenants fleet-notifications fleet-analytics
# (Tests labelled no_tsan are left out: tests/fleet_edge.cmake says why.)
# Unit tests labelled threads start threads of their own and run here too.
TSAN_OPTIONS=halt_on_error=0 ctest --test-dir build-tsan --output-on-failure -L 'integration|threads' \
    -LE no_tsan --timeout 600

echo "== tests =="
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 600
