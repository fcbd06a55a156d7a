#!/usr/bin/env bash
# Installs the Debian packages Sightline needs (only those missing), then
# configures and builds into build/ (or $SIGHTLINE_BUILD_DIR).
# Usage: scripts/setup.sh [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ninja-build pkg-config
          libuv1-dev liblmdb-dev libzstd-dev libprotobuf-c-dev protobuf-c-compiler
          libmicrohttpd-dev libjansson-dev zlib1g-dev libhttp-parser-dev libyaml-dev
          libcurl4-openssl-dev libnghttp2-dev libpcre2-dev libssl-dev
          python3 zstd clang libclang-rt-14-dev lmdb-utils prometheus openssl
          chromium chromium-driver
          libsqlite3-dev libsodium-dev libnats-dev nats-server)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Node packages, versions pinned by each lock file: the integration tests' real
# gRPC clients (tests/grpc), the browser tests' playwright-core driving
# Debian's chromium (tests/ui), and the libraries the web UI loads (uPlot),
# installed into ui-static/node_modules/ where the query server serves them.
# Node and npm come from Debian when the machine lacks them.
if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
fi
for dir in tests/grpc tests/ui ui-static; do
    if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
       [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
done

build="${SIGHTLINE_BUILD_DIR:-build}"
cmake -S . -B "$build" -G Ninja "$@" >/dev/null
cmake --build "$build"
