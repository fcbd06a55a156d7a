#!/usr/bin/env bash
# Metrics benchmark (figures: bench/RESULTS.md): the same node-exporter-like
# samples (bench/metricgen.c: H hosts x ~250 series, 15 s scrapes, S scrapes
# ending now) are sent to
#   - Sightline: OTLP/HTTP protobuf to /v1/metrics, one request per host and
#     scrape, C keep-alive connections, closed loop (every 2xx is durable);
#   - VictoriaMetrics 1.79 (Debian package victoria-metrics): the same samples
#     as Prometheus text to /api/v1/import/prometheus, same request shape;
# then reports ingest samples/s and bytes per sample on disk (Sightline: the
# metrics windows once the WAL has been cut and the ended windows compacted,
# with --partition 60s so that this happens within the run; VictoriaMetrics:
# its data directory after /internal/force_flush and a merge pause).
#
# Usage: bench/metrics_bench.sh BUILD_DIR [--hosts H] [--steps S] [--connections C]
#                               [--partition DURATION]
set -euo pipefail
BUILD=$(cd "$1" && pwd)
shift
HOSTS=20
STEPS=240
CONNS=4
PARTITION=60s # short windows, so that the run ends with its windows compacted
while [ $# -gt 0 ]; do
    case "$1" in
    --hosts) HOSTS=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    --partition) PARTITION=$2; shift 2 ;;
    *) echo "metrics_bench.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
TMP=$(mktemp -d /tmp/sightline-metrics-bench-XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] || rm -rf "$TMP"; echo "data: $TMP" >&2
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
START_MS=$(( ($(date +%s) - STEPS * 15) / 15 * 15 * 1000 ))

# --- Sightline -------------------------------------------------------------------
"$BUILD/sightline" serve --host 127.0.0.1 --otlp-http-port 0 --otlp-grpc-port 0 --query-port 0 \
    --data-dir "$TMP/sl" --ports-file "$TMP/ports.json" --log-level info \
    --partition "$PARTITION" >"$TMP/sl.log" 2>&1 &
SL_PID=$!
PIDS+=("$SL_PID")
for _ in $(seq 100); do [ -s "$TMP/ports.json" ] && break; sleep 0.1; done
OTLP=$(python3 -c "import json; print(json.load(open('$TMP/ports.json'))['otlp_http'])")
QPORT=$(python3 -c "import json; print(json.load(open('$TMP/ports.json'))['query'])")
SL_RES=$("$BUILD/bench/metricgen" --hosts "$HOSTS" --steps "$STEPS" --start-ms "$START_MS" \
    --connections "$CONNS" --otlp "127.0.0.1:$OTLP")
echo "sightline: $SL_RES" >&2
# Wait for the cutter to empty the WAL.
for _ in $(seq 300); do
    LEFT=$(curl -s "http://127.0.0.1:$QPORT/metrics" | awk '/^sightline_storage_wal_records /{print $2}')
    [ "${LEFT:-1}" = "0" ] && break
    sleep 1
done
# Wait for every ended window to be compacted (zstd blocks, no free pages).
for _ in $(seq 120); do
    NWIN=$(find "$TMP/sl/default/metrics" -mindepth 1 -maxdepth 1 -type d | wc -l)
    NCOMP=$(grep -c "compacted in" "$TMP/sl.log" || true)
    [ "$NCOMP" -ge "$NWIN" ] && break
    sleep 1
done
echo "windows: $NWIN, compacted: $NCOMP" >&2
SL_CPU=$(awk '{print ($14+$15)/100}' "/proc/$SL_PID/stat")
SL_BYTES=$(find "$TMP/sl/default/metrics" -name data.mdb -printf '%b\n' | awk '{s+=$1*512} END {print s}')
OOO=$(curl -s "http://127.0.0.1:$QPORT/metrics" | grep 'sightline_metrics_samples_total' || true)
echo "$OOO" >&2

# --- VictoriaMetrics ---------------------------------------------------------------
VM_BIN=$(command -v victoria-metrics || true)
VM_RES="" VM_BYTES=0 VM_CPU=0
if [ -n "$VM_BIN" ]; then
    VMPORT=$(free_port)
    "$VM_BIN" -storageDataPath="$TMP/vm" -httpListenAddr="127.0.0.1:$VMPORT" -retentionPeriod=10y \
        -loggerLevel=ERROR >"$TMP/vm.log" 2>&1 &
    VM_PID=$!
    PIDS+=("$VM_PID")
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$VMPORT/health" >/dev/null && break; sleep 0.1; done
    VM_RES=$("$BUILD/bench/metricgen" --hosts "$HOSTS" --steps "$STEPS" --start-ms "$START_MS" \
        --connections "$CONNS" --vm "127.0.0.1:$VMPORT")
    echo "victoria-metrics: $VM_RES" >&2
    curl -s "http://127.0.0.1:$VMPORT/internal/force_flush" >/dev/null
    sleep 10
    VM_CPU=$(awk '{print ($14+$15)/100}' "/proc/$VM_PID/stat")
    VM_BYTES=$(du -sB1 "$TMP/vm" | cut -f1)
fi

field() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1==k {print $2}'; }
N=$(field "$SL_RES" samples)
echo
echo "| system | samples | ingest samples/s | server CPU s | bytes on disk | bytes/sample |"
echo "|---|---|---|---|---|---|"
printf "| Sightline | %s | %s | %s | %s | %.3f |\n" "$N" "$(field "$SL_RES" samples_per_s)" \
    "$SL_CPU" "$SL_BYTES" "$(echo "$SL_BYTES / $N" | bc -l)"
if [ -n "$VM_RES" ]; then
    printf "| VictoriaMetrics 1.79 | %s | %s | %s | %s | %.3f |\n" "$N" \
        "$(field "$VM_RES" samples_per_s)" "$VM_CPU" "$VM_BYTES" "$(echo "$VM_BYTES / $N" | bc -l)"
fi
