#!/usr/bin/env bash
# Starts Sightline and the whole fleet on this machine: nats-server with
# JetStream, `sightline serve` (health checks of every service, the fleet's
# alert rules), the registry, every service (users twice: a 2.0.0 canary
# beside 1.0.0), the gateway, and the load generator with its fault schedule.
# Ctrl-C stops everything (the load generator prints its summary first).
# Usage: scripts/run.sh --fleet [--rate N] [--chaos SPEC] [--chaos-period S]
#                               [--no-chaos] [--no-loadgen]
# Data: ./data (Sightline) and ./data/fleet (databases, keys, logs, pid files).
set -euo pipefail
cd "$(dirname "$0")/.."

rate=20
chaos="60:latency:users:1500:45,150:errors:auth:0.3:45,240:kill:tenants:0:30"
chaos_period=300
loadgen=1
while [ $# -gt 0 ]; do
    case "$1" in
        --rate) rate="$2"; shift 2 ;;
        --chaos) chaos="$2"; shift 2 ;;
        --chaos-period) chaos_period="$2"; shift 2 ;;
        --no-chaos) chaos=""; shift ;;
        --no-loadgen) loadgen=0; shift ;;
        *) echo "run.sh --fleet: unknown option $1" >&2; exit 2 ;;
    esac
done

scripts/setup.sh
bin=build
fleet_dir=data/fleet
run_dir="$fleet_dir/run"
mkdir -p "$fleet_dir" "$run_dir" "$fleet_dir/logs"
rm -f "$run_dir"/*.pid "$run_dir"/*.hold "$run_dir/stopping"

for cmd in nats-server; do
    command -v "$cmd" >/dev/null || { echo "run.sh --fleet: $cmd is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done

# Keys made once: the shared HS256 service key and auth's Ed25519 user-token
# seed (only auth reads it; the gateway fetches auth's public key).
[ -s "$fleet_dir/service.key" ] || (umask 077; openssl rand -base64 32 > "$fleet_dir/service.key")
[ -s "$fleet_dir/user.key" ] || (umask 077; openssl rand -hex 32 > "$fleet_dir/user.key")

registry=http://127.0.0.1:8500
nats=nats://127.0.0.1:4222
otlp=http://127.0.0.1:4318
declare -A port=([gateway]=8080 [registry]=8500 [auth]=8101 [users]=8102 [tenants]=8103
                 [notifications]=8104 [analytics]=8105 [users-canary]=8112)

# stop NAME...: SIGTERM to the current process of each, then wait (up to 20 s)
# until they are gone, so that what they flush on the way out (telemetry,
# deregistration) still finds the next layer up.
stop() {
    local p left=()
    for name in "$@"; do
        if [ -s "$run_dir/$name.pid" ]; then
            p=$(cat "$run_dir/$name.pid")
            kill -TERM "$p" 2>/dev/null && left+=("$p")
        fi
    done
    for _ in $(seq 1 200); do
        local alive=0
        for p in "${left[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && return 0
        sleep 0.1
    done
}

stop_all() {
    trap - INT TERM EXIT
    touch "$run_dir/stopping"
    echo "run.sh --fleet: stopping" >&2
    # The load generator first (it prints its summary), then the gateway and
    # the services, then the registry, Sightline and NATS.
    stop loadgen
    stop gateway
    stop auth users users-canary tenants notifications analytics
    stop registry
    stop sightline
    stop nats
    wait 2>/dev/null || true
    rm -f "$run_dir"/*.pid "$run_dir"/*.hold
    echo "run.sh --fleet: stopped" >&2
    exit 0
}
trap stop_all INT TERM EXIT

# supervise NAME CMD...: runs CMD in its own session (a Ctrl-C on the
# terminal reaches only this script, which stops everything in order), keeps
# its pid in run/NAME.pid, and starts it again when it dies unless the run is
# stopping; while run/NAME.hold exists (the load generator's kill fault) it
# waits before restarting.
supervise() {
    local name="$1"; shift
    (
        while [ ! -e "$run_dir/stopping" ]; do
            setsid "$@" >>"$fleet_dir/logs/$name.out" 2>>"$fleet_dir/logs/$name.log" &
            local child=$!
            echo "$child" > "$run_dir/$name.pid"
            wait "$child" || true
            [ -e "$run_dir/stopping" ] && break
            echo "run.sh --fleet: $name exited; restarting" >&2
            while [ -e "$run_dir/$name.hold" ] && [ ! -e "$run_dir/stopping" ]; do sleep 0.5; done
            sleep 1
        done
    ) &
}

wait_port() { # NAME PORT
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "run.sh --fleet: $1 did not come up on port $2 (see $fleet_dir/logs/$1.log)" >&2
    exit 1
}

supervise nats nats-server -a 127.0.0.1 -p 4222 -js -sd "$fleet_dir/nats"
wait_port nats 4222

checks=""
for s in gateway registry auth users tenants notifications analytics; do
    checks="${checks:+$checks,}$s=http://127.0.0.1:${port[$s]}/health"
done
supervise sightline "$bin/sightline" serve --data-dir ./data --ui-dir ./ui-static \
    --rules-dir fleet/rules --health-checks "$checks"
wait_port sightline 4318

export OTEL_EXPORTER_OTLP_ENDPOINT="$otlp"
common=(--registry "$registry" --nats "$nats" --service-key-file "$fleet_dir/service.key")

supervise registry "$bin/fleet/registry/fleet-registry" --listen 127.0.0.1:8500 \
    --db "$fleet_dir/registry.db" --service-key-file "$fleet_dir/service.key"
wait_port registry 8500

started=()
start_service() { # NAME BINARY PORT VERSION [extra args]
    local name="$1" binary="$2" p="$3" version="$4"; shift 4
    if [ ! -x "$binary" ]; then
        echo "run.sh --fleet: $binary is not built; $name is left out" >&2
        return 0
    fi
    started+=("$name")
    # The canary shares its service's database: same data, new code.
    supervise "$name" env OTEL_SERVICE_NAME="${name%-canary}" "$binary" --listen "127.0.0.1:$p" \
        --db "$fleet_dir/${name%-canary}.db" --version "$version" --enable-faults "${common[@]}" "$@"
}
start_service auth "$bin/fleet/auth/fleet-auth" 8101 1.0.0 --user-key-file "$fleet_dir/user.key"
start_service users "$bin/fleet/users/fleet-users" 8102 1.0.0
start_service users-canary "$bin/fleet/users/fleet-users" 8112 2.0.0 --tags canary
start_service tenants "$bin/fleet/tenants/fleet-tenants" 8103 1.0.0
start_service notifications "$bin/fleet/notifications/fleet-notifications" 8104 1.0.0
start_service analytics "$bin/fleet/analytics/fleet-analytics" 8105 1.0.0
supervise gateway env OTEL_SERVICE_NAME=gateway "$bin/fleet/gateway/fleet-gateway" \
    --listen 127.0.0.1:8080 --routes fleet/gateway/routes.yaml "${common[@]}"
for s in "${started[@]}" gateway; do wait_port "$s" "${port[$s]}"; done

cat >&2 <<MSG
run.sh --fleet: everything is up.
  Sightline UI     http://127.0.0.1:16686   (traces, logs, metrics, alerts, fleet health)
  gateway          http://127.0.0.1:8080    (routes: fleet/gateway/routes.yaml)
  registry         http://127.0.0.1:8500/v1/registry/services
  logs             $fleet_dir/logs/
Ctrl-C stops everything.
MSG

if [ "$loadgen" = 1 ]; then
    args=(--gateway http://127.0.0.1:8080 --rate "$rate" --registry "$registry"
          --service-key-file "$fleet_dir/service.key" --pid-dir "$run_dir")
    [ -n "$chaos" ] && args+=(--chaos "$chaos" --chaos-period "$chaos_period")
    setsid "$bin/fleet/loadgen/fleet-loadgen" "${args[@]}" &
    echo $! > "$run_dir/loadgen.pid"
    wait $! || true
fi
wait
