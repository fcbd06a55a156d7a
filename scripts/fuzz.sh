#!/usr/bin/env bash
# Runs every libFuzzer target (clang, ASan+UBSan) for SECONDS each (default 60)
# on a scratch copy of its seed corpus. New crashers land in the current
# directory as crash-*; add minimized ones to tests/fuzz/corpus/<target>/.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
shift || true
CC=clang cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DSIGHTLINE_FUZZ=ON -DSIGHTLINE_SANITIZE=ON >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=($(ls tests/fuzz/corpus))
fi
cmake --build build-fuzz --target "${targets[@]}"
for t in "${targets[@]}"; do
    work=$(mktemp -d)
    echo "== $t for ${secs}s"
    set +e
    build-fuzz/tests/"$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=4096 "$work" \
        "tests/fuzz/corpus/$t" >"$work.log" 2>&1
    rc=$?
    set -e
    grep -E "DONE|^SUMMARY" "$work.log" || true
    if [ $rc -ne 0 ]; then
        tail -60 "$work.log"
        echo "fuzz: $t failed (crash input written to ./crash-*)"
        exit 1
    fi
    rm -rf "$work" "$work.log"
done
