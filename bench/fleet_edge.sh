#!/usr/bin/env bash
# The fleet edge's benchmarks (figures into bench/RESULTS.md, "Fleet edge"):
#   1. gateway overhead: GET /v1/echo/hello on a fleet-echo instance directly
#      and through fleet-gateway (registry discovery, route match, rate-limit
#      check, breaker, forwarding), sequential on keep-alive connections;
#   2. requests/s through the gateway, closed loop over 8 connections;
#   3. registry capacity: 10,000 instances heartbeating every 10 s, the
#      registry's CPU share of one core.
# Release build in build-bench; telemetry export off (no OTEL endpoint), so
# the figures are the edge's own cost. Loopback only.
# Usage: bench/fleet_edge.sh [requests] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-5000}"
secs="${2:-20}"
build=build-bench
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" --target fleet-registry fleet-gateway fleet-echo fleet-edge-bench \
    > /tmp/fleet-edge-build.log || { cat /tmp/fleet-edge-build.log; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port=
start() { # NAME CMD... ; sets $port from the "listening on" line (not in a subshell:
          # the pid must reach the cleanup)
    local name="$1"; shift
    "$@" > "$work/$name.out" 2> "$work/$name.log" &
    pids+=($!)
    echo $! > "$work/$name.pid"
    for _ in $(seq 1 200); do
        if grep -q "listening on" "$work/$name.out" 2>/dev/null; then
            port=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$work/$name.out" | head -1)
            return 0
        fi
        sleep 0.05
    done
    echo "$name did not start: $(cat "$work/$name.log")" >&2
    exit 1
}

cat > "$work/routes.yaml" <<'YAML'
routes:
  - prefix: /v1/echo
    service: echo
    auth: none
limits: {max_body_bytes: 65536}
rate_limits:
  per_key: {rate: 1000000, burst: 1000000}
YAML

unset OTEL_EXPORTER_OTLP_ENDPOINT
start registry "$build/fleet/registry/fleet-registry" --listen 127.0.0.1:0 --db "$work/registry.db" \
    --log-level warn --check-interval-ms 0
reg_port=$port
# The echo registers itself and heartbeats (the runtime's registry client).
start echo "$build/fleet/runtime/fleet-echo" --listen 127.0.0.1:0 --log-level warn \
    --registry "http://127.0.0.1:$reg_port"
echo_port=$port
start gateway "$build/fleet/gateway/fleet-gateway" --listen 127.0.0.1:0 --log-level warn \
    --routes "$work/routes.yaml" --registry "http://127.0.0.1:$reg_port"
gw_port=$port

echo "== machine: $(nproc) cores, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD)"
echo "== 1. gateway overhead ($n sequential requests each way)"
"$build/bench/fleet-edge-bench" overhead "http://127.0.0.1:$echo_port/v1/echo/hello" \
    "http://127.0.0.1:$gw_port/v1/echo/hello" "$n"
echo "== 2. throughput for ${secs}s, 8 connections"
echo -n "direct:  "
"$build/bench/fleet-edge-bench" throughput "http://127.0.0.1:$echo_port/v1/echo/hello" "$secs" 8
echo -n "gateway: "
"$build/bench/fleet-edge-bench" throughput "http://127.0.0.1:$gw_port/v1/echo/hello" "$secs" 8
curl -s "http://127.0.0.1:$gw_port/metrics" | grep -E "^gateway_|circuit_breaker|http_client_requests_total" || true
echo "== 3. registry capacity: 10000 instances, heartbeat every 10 s, ${secs}s of heartbeats"
"$build/bench/fleet-edge-bench" registry "http://127.0.0.1:$reg_port" 10000 10 "$secs" \
    "$(cat "$work/registry.pid")"
