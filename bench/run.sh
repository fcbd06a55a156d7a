#!/usr/bin/env bash
# Sightline ingest benchmark (methodology: bench/RESULTS.md).
#
# Builds Release in build-bench (if needed), starts `sightline serve` on free
# loopback ports with a fresh data directory, drives it with bench/loadgen for
# a fixed time (closed loop, every 2xx is a durable commit), then measures:
# sustained spans/s, request latency, server CPU seconds per million spans,
# peak RSS, bytes on disk per span once the WAL has been cut into blocks, and
# on the same payloads the single-core protobuf-c decode limit and the ratio.
# Prints a markdown table ready to paste into bench/RESULTS.md.
#
# Usage: bench/run.sh [--duration S] [--connections N] [--spans N] [--distinct K]
#                     [--seed N] [--decode-seconds S] [--build-dir DIR] [--no-build]
#                     [--keep] [--server-arg ARG]...
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD="$ROOT/build-bench"
DURATION=20
CONNS=8
SPANS=500
DISTINCT=256
SEED=1
DECODE_SECONDS=5
BUILD_IT=1
KEEP=0
SERVER_EXTRA=()

while [ $# -gt 0 ]; do
    case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    --spans) SPANS=$2; shift 2 ;;
    --distinct) DISTINCT=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --decode-seconds) DECODE_SECONDS=$2; shift 2 ;;
    --build-dir) BUILD=$2; shift 2 ;;
    --no-build) BUILD_IT=0; shift ;;
    --keep) KEEP=1; shift ;;
    --server-arg) SERVER_EXTRA+=("$2"); shift 2 ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done

log() { echo "run.sh: $*" >&2; }

# --- build -------------------------------------------------------------------
if [ "$BUILD_IT" = 1 ]; then
    if [ ! -f "$BUILD/build.ninja" ]; then
        # Warnings are CI's business (it builds with -Werror); a benchmark should
        # not fail on a Release-only -Wmaybe-uninitialized somewhere.
        cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
            -DSIGHTLINE_WERROR=OFF >&2
    fi
    ninja -C "$BUILD" sightline loadgen decode_limit otlp-gen >&2
fi
SIGHTLINE="$BUILD/sightline"
LOADGEN="$BUILD/bench/loadgen"
DECODE="$BUILD/bench/decode_limit"
for b in "$SIGHTLINE" "$LOADGEN" "$DECODE"; do
    [ -x "$b" ] || { log "missing $b (build failed?)"; exit 1; }
done

# --- server flags, from its own --help ----------------------------------------
HELP=$("$SIGHTLINE" --help 2>&1 || true)
has_flag() { grep -q -- "--$1\b" <<<"$HELP"; }
for f in data-dir otlp-http-port; do
    has_flag "$f" || { log "sightline --help does not list --$f; adapt run.sh"; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sightline-bench.XXXXXX")
DATA="$WORK/data"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

ARGS=(serve --data-dir "$DATA")
has_flag host && ARGS+=(--host 127.0.0.1)
has_flag log-level && ARGS+=(--log-level warn)
if has_flag ports-file; then
    ARGS+=(--otlp-http-port 0 --ports-file "$WORK/ports.json")
    has_flag query-port && ARGS+=(--query-port 0)
else
    OTLP_PORT=$(free_port)
    ARGS+=(--otlp-http-port "$OTLP_PORT")
    if has_flag query-port; then
        QUERY_PORT=$(free_port)
        ARGS+=(--query-port "$QUERY_PORT")
    fi
fi
ARGS+=("${SERVER_EXTRA[@]}")

log "starting: $SIGHTLINE ${ARGS[*]}"
"$SIGHTLINE" "${ARGS[@]}" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

# Wait until it listens (ports file written, or the OTLP port accepts).
for _ in $(seq 1 200); do
    kill -0 "$SERVER_PID" 2>/dev/null || { log "server exited:"; cat "$WORK/server.log" >&2; exit 1; }
    if [ -f "$WORK/ports.json" ]; then
        OTLP_PORT=$(sed -n 's/.*"otlp_http":\([0-9]*\).*/\1/p' "$WORK/ports.json")
        QUERY_PORT=$(sed -n 's/.*"query":\([0-9]*\).*/\1/p' "$WORK/ports.json")
        break
    fi
    if [ -n "${OTLP_PORT:-}" ] && (exec 3<>"/dev/tcp/127.0.0.1/$OTLP_PORT") 2>/dev/null; then
        break
    fi
    sleep 0.1
done
[ -n "${OTLP_PORT:-}" ] || { log "server did not start listening"; exit 1; }
log "server pid $SERVER_PID, OTLP/HTTP on $OTLP_PORT, query on ${QUERY_PORT:-none}"

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { # utime + stime of the server; fields after the ")" of comm
    local s
    s=$(cat "/proc/$SERVER_PID/stat")
    s=${s##*) }
    # shellcheck disable=SC2086
    set -- $s
    echo $((${12} + ${13}))
}
metric() { # value of a metric on the query port's /metrics, or empty
    [ -n "${QUERY_PORT:-}" ] || return 0
    { curl -fsS --max-time 5 "http://127.0.0.1:$QUERY_PORT/metrics" 2>/dev/null || true; } |
        awk -v m="$1" '$1 == m { print $2; exit }'
}

# --- load ----------------------------------------------------------------------
LOADAVG=$(cut -d' ' -f1 /proc/loadavg) # other work on the machine skews every figure
CPU0=$(cpu_ticks)
"$LOADGEN" --port "$OTLP_PORT" --duration "$DURATION" --connections "$CONNS" --spans "$SPANS" \
    --distinct "$DISTINCT" --seed "$SEED" | tee "$WORK/loadgen.out" >&2 || {
    log "loadgen failed; server log:"
    tail -20 "$WORK/server.log" >&2
    exit 1
}
CPU1=$(cpu_ticks)
RESULT=$(grep '^RESULT ' "$WORK/loadgen.out")
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$RESULT"; }
SPANS_ACKED=$(field spans)
SPS=$(field spans_per_s)
P50=$(field p50_ms)
P99=$(field p99_ms)
MAXMS=$(field max_ms)
ERRS="429: $(field s429), 503: $(field s503), other: $(field other), io: $(field io_errors)"

# --- wait for the WAL to be cut into blocks ---------------------------------------
WAL_END=$(metric sightline_storage_wal_records)
T_END=$(date +%s.%N)
WAL=""
for _ in $(seq 1 240); do
    WAL=$(metric sightline_storage_wal_records)
    [ "$WAL" = "0" ] && break
    [ -z "$WAL" ] && { sleep 5; break; } # no metric: give the cutter a few intervals
    sleep 0.5
done
DRAIN_S=$(awk -v a="$T_END" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
CPU2=$(cpu_ticks)
HWM_KB=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status")
# VmHWM counts the LMDB files' mapped pages too (the kernel drops them under
# pressure); RssAnon is the process's own memory.
ANON_KB=$(awk '/^RssAnon:/ { print $2 }' "/proc/$SERVER_PID/status")
DU_APPARENT=$(du -sb "$DATA" | cut -f1)
# The window files hold blocks and indexes, what grows with the data kept;
# the tenant's WAL file only holds the uncut backlog and keeps its high-water
# mark as free pages LMDB reuses (bounded by the server's WAL backlog limit).
DU_WINDOWS=$(find "$DATA" -path '*/traces/*' -name data.mdb -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
DU_WAL=$(find "$DATA" -path '*/wal/*' -name data.mdb -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
DU_ALLOC=$(du -s --block-size=1 "$DATA" | cut -f1)

# Where the bytes are: LMDB pages per database, and pages free for reuse (an
# LMDB file never shrinks, so the WAL's high-water mark stays in it as free
# pages that later writes reuse).
LMDB_LINE="n/a (mdb_stat not installed)"
if command -v mdb_stat >/dev/null; then
    LMDB_LINE=$(find "$DATA" -name data.mdb -printf '%h\n' | while read -r env; do
        mdb_stat -efa "$env"
    done | awk -v spans="$SPANS_ACKED" '
        /^Status of / { sec = $3 }
        /^Freelist Status/ { sec = "freelist" }
        /Page size:/ { ps = $3 }
        /Branch pages:|Leaf pages:|Overflow pages:/ { pages[sec] += $3; live += $3 }
        /Free pages:/ { free += $3 }
        END {
            if (spans == 0 || ps == 0) { print "n/a"; exit }
            out = sprintf("live %.1f bytes/span (", live * ps / spans)
            sep = ""
            for (s in pages) {
                if (pages[s] * ps / spans >= 0.05) {
                    out = out sep sprintf("%s %.1f", s, pages[s] * ps / spans); sep = ", "
                }
            }
            printf "%s), free pages %.1f bytes/span\n", out, free * ps / spans
        }')
fi

# Stop the server before the decode loop so that it has a core to itself.
kill -TERM "$SERVER_PID"
for _ in $(seq 1 300); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
kill -KILL "$SERVER_PID" 2>/dev/null || true
wait "$SERVER_PID" 2>/dev/null || true

# --- decode limit on the same payloads ---------------------------------------------
"$DECODE" --spans "$SPANS" --distinct "$DISTINCT" --seed "$SEED" --seconds "$DECODE_SECONDS" |
    tee "$WORK/decode.out" >&2
DRES=$(grep '^RESULT ' "$WORK/decode.out")
DEC_ARENA=$(sed -n 's/.* arena_spans_per_s=\([0-9]*\).*/\1/p' <<<"$DRES")
DEC_WARM=$(sed -n 's/.* arena_warm_spans_per_s=\([0-9]*\).*/\1/p' <<<"$DRES")
DEC_MALLOC=$(sed -n 's/.* malloc_spans_per_s=\([0-9]*\).*/\1/p' <<<"$DRES")
WIRE_BPS=$(sed -n 's/.* bytes_per_span=\([0-9.]*\).*/\1/p' <<<"$DRES")

# --- report ------------------------------------------------------------------------
calc() { awk "BEGIN { printf \"$1\", ($2) }"; }
CPU_LOAD=$(calc "%.2f" "($CPU1 - $CPU0) / $CLK_TCK")
CPU_ALL=$(calc "%.2f" "($CPU2 - $CPU0) / $CLK_TCK")
CPU_PER_M=$(calc "%.2f" "$SPANS_ACKED > 0 ? ($CPU2 - $CPU0) / $CLK_TCK / $SPANS_ACKED * 1e6 : 0")
RSS_MIB=$(calc "%.1f" "$HWM_KB / 1024")
ANON_MIB=$(calc "%.1f" "${ANON_KB:-0} / 1024")
BPS_APP=$(calc "%.1f" "$SPANS_ACKED > 0 ? $DU_APPARENT / $SPANS_ACKED : 0")
BPS_ALLOC=$(calc "%.1f" "$SPANS_ACKED > 0 ? $DU_ALLOC / $SPANS_ACKED : 0")
BPS_WIN=$(calc "%.1f" "$SPANS_ACKED > 0 ? $DU_WINDOWS / $SPANS_ACKED : 0")
WAL_MIB=$(calc "%.0f" "$DU_WAL / 1048576")
# End to end: everything acknowledged, divided by the load time plus the time
# the cutter needed afterwards to turn the remaining WAL into blocks.
E2E=$(calc "%.0f" "$SPANS_ACKED / ($(field seconds) + $DRAIN_S)")
RATIO=$(calc "%.0f" "$DEC_MALLOC > 0 ? 100 * $SPS / $DEC_MALLOC : 0")
RATIO_A=$(calc "%.0f" "$DEC_ARENA > 0 ? 100 * $SPS / $DEC_ARENA : 0")
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=""
if git -C "$ROOT" status --porcelain 2>/dev/null | grep -q .; then DIRTY="+dirty"; fi
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
ok() { awk "BEGIN { exit !($1) }" && echo "yes" || echo "**no**"; }

cat <<EOF

### $(date +%Y-%m-%d) — $(nproc) cores ($CPU_MODEL), commit $COMMIT$DIRTY

Command: \`bench/run.sh --duration $DURATION --connections $CONNS --spans $SPANS --distinct $DISTINCT --seed $SEED\`
(load average before the run: $LOADAVG)

| metric | value | target | met |
| --- | --- | --- | --- |
| durable ingest (2xx = fsync'd WAL commit) | $SPS spans/s ($SPANS_ACKED spans in $(field seconds) s) | ≥ 200000 spans/s | $(ok "$SPS >= 200000") |
| end to end: acknowledged and cut into blocks | $E2E spans/s (load $(field seconds) s + final cut $DRAIN_S s) | ≥ 200000 spans/s | $(ok "$E2E >= 200000") |
| request latency ($SPANS spans/request, $CONNS connections) | p50 $P50 ms, p99 $P99 ms, max $MAXMS ms | | |
| non-2xx answers | $ERRS | | |
| loadgen's own CPU (same machine) | $(field client_cpu_s) s | | |
| server CPU | $CPU_PER_M s per million spans ($CPU_LOAD s under load, $CPU_ALL s incl. the final cut) | | |
| WAL backlog when the load stopped | ${WAL_END:-n/a} records, cut in $DRAIN_S s | | |
| peak RSS (VmHWM, incl. mapped LMDB pages) | $RSS_MIB MiB; anonymous memory after the cut (RssAnon) $ANON_MIB MiB | | |
| on disk per span: window files (blocks + indexes) after the cut | $BPS_WIN bytes/span; wire size $WIRE_BPS bytes/span | ≤ 30 bytes/span | $(ok "$BPS_WIN <= 30") |
| whole data dir (du -sb), incl. the WAL file's high-water mark ($WAL_MIB MiB) | $BPS_APP bytes/span, $BPS_ALLOC allocated (WAL records left: ${WAL:-n/a}) | | |
| LMDB breakdown | $LMDB_LINE | | |
| decode limit, 1 core, same payloads (unpack + free_unpacked) | $DEC_MALLOC spans/s; into a per-request arena $DEC_ARENA, into a pre-grown arena $DEC_WARM | | |
| sustained / decode limit | $RATIO% ($RATIO_A% of the per-request-arena figure) | ≥ 40% | $(ok "$RATIO >= 40") |
EOF
