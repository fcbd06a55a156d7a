#!/usr/bin/env bash
# Builds sdk-c on its own (no other part of the tree), installs it into a
# temporary prefix with `cmake --install`, then compiles and runs a consumer
# program through pkg-config, against the shared and the static library.
# usage: install_test.sh SDK_SOURCE_DIR
set -euo pipefail
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset CFLAGS LDFLAGS
cmake -S "$src" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$tmp/prefix" \
    >/dev/null
cmake --build "$tmp/build" -j2 >/dev/null
cmake --install "$tmp/build" >/dev/null
pc=$(find "$tmp/prefix" -name sightline-otel.pc)
test -n "$pc" || { echo "no sightline-otel.pc installed"; exit 1; }
test -f "$tmp/prefix/include/sightline/sightline.h" || { echo "header not installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
libdir=$(pkg-config --variable=libdir sightline-otel)
cc -std=c17 -Wall -Wextra -Werror "$src/tests/install_consumer.c" \
    $(pkg-config --cflags --libs sightline-otel) -o "$tmp/consumer_shared"
LD_LIBRARY_PATH="$libdir" "$tmp/consumer_shared"
cc -std=c17 -Wall -Wextra -Werror "$src/tests/install_consumer.c" \
    $(pkg-config --cflags sightline-otel) "$libdir/libsightline-otel.a" \
    $(pkg-config --libs libcurl zlib) -lpthread -lm -o "$tmp/consumer_static"
"$tmp/consumer_static"
# The shared library exports the sl_ API and nothing else.
extra=$(nm -D --defined-only "$libdir/libsightline-otel.so" | awk '{print $3}' | grep -v '^sl_' || true)
test -z "$extra" || { echo "unexpected exported symbols: $extra"; exit 1; }
echo "install test passed"
