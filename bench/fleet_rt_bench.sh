#!/usr/bin/env bash
# Fleet runtime benchmark (methodology and figures: bench/RESULTS.md, "Fleet
# runtime"). Starts `sightline serve` and a JetStream nats-server on free
# loopback ports with fresh directories, then runs bench/fleet_rt_bench with
# tracing on (OTLP/HTTP export to that Sightline):
#   1. server middleware overhead per request (bare libmicrohttpd vs sf_server);
#   2. events/s end to end through JetStream (PRODUCER and CONSUMER spans).
# The HTTP part also runs once with telemetry off for comparison.
#
# Usage: bench/fleet_rt_bench.sh [--build-dir DIR] [--requests N] [--events N]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD="$ROOT/build"
REQUESTS=20000
EVENTS=50000
while [ $# -gt 0 ]; do
    case "$1" in
    --build-dir) BUILD=$2; shift 2 ;;
    --requests) REQUESTS=$2; shift 2 ;;
    --events) EVENTS=$2; shift 2 ;;
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fleet_rt_bench.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
cmake --build "$BUILD" -j2 --target sightline fleet_rt_bench >&2

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$BUILD/sightline" serve --host 127.0.0.1 --otlp-http-port 0 --otlp-grpc-port 0 --query-port 0 \
    --data-dir "$work/data" --ports-file "$work/ports.json" --log-level warn \
    >"$work/sightline.log" 2>&1 &
pids+=($!)
nats_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$work/js" >"$work/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -f "$work/ports.json" ] && break; sleep 0.1; done
otlp=$(python3 -c "import json; print(json.load(open('$work/ports.json'))['otlp_http'])")

export OTEL_BSP_MAX_QUEUE_SIZE=65536 OTEL_BSP_SCHEDULE_DELAY=200 OTEL_BLRP_MAX_QUEUE_SIZE=65536
echo "## telemetry off"
env -u OTEL_EXPORTER_OTLP_ENDPOINT "$BUILD/bench/fleet_rt_bench" http "$REQUESTS"
echo
echo "## tracing on (export to sightline serve on 127.0.0.1:$otlp)"
OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$otlp" "$BUILD/bench/fleet_rt_bench" http "$REQUESTS"
echo
echo "## NATS JetStream events end to end, tracing on"
OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$otlp" \
    "$BUILD/bench/fleet_rt_bench" nats "nats://127.0.0.1:$nats_port" "$EVENTS"
