#!/usr/bin/env bash
# What reading the active series back costs at start (figures: bench/RESULTS.md).
#
# Ingests H node-exporter-like hosts (bench/metricgen.c, about 250 series each)
# for S scrapes ending now into a tenant with a max_active_series limit, then,
# by --mode:
#   cut        waits for the cut and stops the server (SIGTERM): the series are
#              read back from the current window's index (default);
#   wal        kills it (SIGKILL) at once: they are read back from the WAL;
#   compacted  runs with --partition 10s and waits until the ended windows
#              are compacted: they are read back from zstd blocks;
# and starts it again on the same data:
#   - listening: from exec to the ports file (the read-back runs beside it);
#   - read back: from exec until /metrics shows the same active series count,
#     and the server's own figure from its log line;
#   - the same start without --limits (nothing to read back), for comparison.
#
# Usage: bench/series_restart.sh BUILD_DIR [--hosts H] [--steps S] [--mode M]
set -euo pipefail
BUILD=$(cd "$1" && pwd)
shift
HOSTS=400
STEPS=4
MODE=cut
while [ $# -gt 0 ]; do
    case "$1" in
    --hosts) HOSTS=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --mode) MODE=$2; shift 2 ;;
    *) echo "series_restart.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
TMP=$(mktemp -d /tmp/sightline-series-restart-XXXXXX)
SL_PID=
cleanup() {
    [ -z "$SL_PID" ] || kill "$SL_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
printf 'defaults:\n  max_active_series: 10000000\n' >"$TMP/limits.yaml"
now_ms() { date +%s%3N; }

# start EXTRA_ARGS...: starts the server, sets SL_PID, QPORT, OTLP and
# LISTEN_MS (exec to ports file).
start() {
    rm -f "$TMP/ports.json"
    local t0
    t0=$(now_ms)
    "$BUILD/sightline" serve --host 127.0.0.1 --otlp-http-port 0 --otlp-grpc-port 0 \
        --query-port 0 --data-dir "$TMP/data" --ports-file "$TMP/ports.json" \
        --log-level info "$@" >>"$TMP/sl.log" 2>&1 &
    SL_PID=$!
    START_MS=$t0
    for _ in $(seq 2000); do [ -s "$TMP/ports.json" ] && break; sleep 0.005; done
    LISTEN_MS=$(( $(now_ms) - t0 ))
    OTLP=$(python3 -c "import json; print(json.load(open('$TMP/ports.json'))['otlp_http'])")
    QPORT=$(python3 -c "import json; print(json.load(open('$TMP/ports.json'))['query'])")
}
stop() {
    kill -TERM "$SL_PID"
    wait "$SL_PID" || true
    SL_PID=
}
gauge() {
    curl -s "http://127.0.0.1:$QPORT/metrics" | awk -v n="$1" '$1 == n {print $2}'
}

ARGS=(--limits "$TMP/limits.yaml")
[ "$MODE" != compacted ] || ARGS+=(--partition 10s)
start "${ARGS[@]}"
"$BUILD/bench/metricgen" --hosts "$HOSTS" --steps "$STEPS" \
    --start-ms $(( ($(date +%s) - STEPS * 15) * 1000 )) --otlp "127.0.0.1:$OTLP" >&2
ACTIVE=$(gauge 'sightline_active_series{tenant="default"}')
if [ "$MODE" = wal ]; then
    kill -KILL "$SL_PID"
    wait "$SL_PID" || true
    SL_PID=
else
    for _ in $(seq 300); do
        [ "$(gauge sightline_storage_wal_records)" = "0" ] && break
        sleep 0.5
    done
    if [ "$MODE" = compacted ]; then
        # Every window compacted (they all end 10 s after the last write).
        for _ in $(seq 120); do
            NW=$(ls "$TMP/data/default/metrics" | grep -c '^[0-9]*$')
            NC=$(grep -c 'metrics/[0-9]*: compacted' "$TMP/sl.log" || true)
            [ "$NC" -ge "$NW" ] && break
            sleep 1
        done
    fi
    stop
fi
DISK=$(du -sm "$TMP/data" | cut -f1)

start "${ARGS[@]}"
while [ "$(gauge 'sightline_active_series{tenant="default"}')" != "$ACTIVE" ]; do
    [ $(( $(now_ms) - START_MS )) -lt 60000 ] || { echo "read-back timed out" >&2; exit 1; }
    sleep 0.005
done
READY_MS=$(( $(now_ms) - START_MS ))
WITH_LISTEN=$LISTEN_MS
LOGLINE=$(grep 'read back from storage' "$TMP/sl.log" | tail -1 | sed 's/.*collector: //')
stop

start
WITHOUT_LISTEN=$LISTEN_MS
stop

cat <<EOF
| figure | value |
| --- | --- |
| mode | $MODE |
| series (one tenant, limit 10M) | $ACTIVE active, $HOSTS hosts x $STEPS scrapes, data dir $DISK MiB |
| start to listening, with the read-back | $WITH_LISTEN ms |
| start to listening, without limits (nothing read back) | $WITHOUT_LISTEN ms |
| start to the restored count in /metrics | $READY_MS ms |
| the server's log | $LOGLINE |
EOF
