#!/usr/bin/env bash
# Starts Sightline and the whole fleet on this machine: nats-server with
# JetStream, `sightline serve` (health checks of every service, the fleet's
# alert rules), the registry, every service (users twice: a 2.0.0 canary
# beside 1.0.0), the gateway, and the load generator with its fault schedule.
# Ctrl-C stops everything (the load generator prints its summary first).
usage() {
    cat <<'USAGE'
Usage: scripts/run.sh --fleet [options]
  --rate N              load generator requests per second (20)
  --chaos SPEC          fault schedule AT:KIND:SERVICE:ARG:FOR,... (fleet/README.md)
  --chaos-period S      the schedule repeats every S seconds (300)
  --no-chaos            no faults
  --no-loadgen          no load generator
  --data-dir DIR        Sightline's data in DIR, the fleet's in DIR/fleet (./data)
  --port-base N         consecutive ports from N: NATS, Sightline's OTLP/HTTP,
                        OTLP/gRPC and query ports, the registry, the gateway, auth,
                        users, the users canary, tenants, notifications, analytics
                        (default: 4222 4318 4317 16686 8500 8080 8101 8102 8112
                        8103 8104 8105)
  --build-dir DIR       where the binaries are built (build)
  --no-setup            do not run scripts/setup.sh (the build dir is up to date)
  --rule-interval DUR   evaluate every rule group of fleet/rules every DUR
  --rule-for DUR        every alert's `for` becomes DUR
                        (both: a derived copy of the rules in DIR/fleet/rules; the
                        files in fleet/rules are left as they are)
Other settings of `sightline serve` come from its SIGHTLINE_* variables (e.g.
SIGHTLINE_HEALTH_CHECK_INTERVAL), the services' telemetry from OTEL_* ones.
USAGE
}
set -euo pipefail
here=$PWD
cd "$(dirname "$0")/.."

rate=20
chaos="60:latency:users:1500:45,150:errors:auth:0.3:45,240:kill:tenants:0:30"
chaos_period=300
loadgen=1
data_dir=./data
port_base=""
bin=build
setup=1
rule_interval=""
rule_for=""
abs() { case "$1" in /*) echo "$1" ;; *) echo "$here/$1" ;; esac; }
need() { [ $# -ge 2 ] || { echo "run.sh --fleet: $1 needs a value" >&2; exit 2; }; }
is_duration() { [[ "$1" =~ ^[0-9]+(ms|s|m|h)$ ]] || { echo "run.sh --fleet: $2: '$1' is not a duration such as 500ms, 5s or 1m" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
        --rate) need "$@"; rate="$2"; shift 2 ;;
        --chaos) need "$@"; chaos="$2"; shift 2 ;;
        --chaos-period) need "$@"; chaos_period="$2"; shift 2 ;;
        --no-chaos) chaos=""; shift ;;
        --no-loadgen) loadgen=0; shift ;;
        --data-dir) need "$@"; data_dir=$(abs "$2"); shift 2 ;;
        --port-base) need "$@"; port_base="$2"; shift 2
            [[ "$port_base" =~ ^[0-9]+$ ]] && [ "$port_base" -ge 1024 ] && [ "$port_base" -le 65524 ] ||
                { echo "run.sh --fleet: --port-base: a number from 1024 to 65524" >&2; exit 2; } ;;
        --build-dir) need "$@"; bin=$(abs "$2"); shift 2 ;;
        --no-setup) setup=0; shift ;;
        --rule-interval) need "$@"; is_duration "$2" "$1"; rule_interval="$2"; shift 2 ;;
        --rule-for) need "$@"; is_duration "$2" "$1"; rule_for="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh --fleet: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

if [ "$setup" = 1 ]; then
    SIGHTLINE_BUILD_DIR="$bin" scripts/setup.sh
fi
for b in "$bin/sightline" "$bin/fleet/registry/fleet-registry" "$bin/fleet/gateway/fleet-gateway"; do
    [ -x "$b" ] || { echo "run.sh --fleet: $b is not built (--build-dir?)" >&2; exit 2; }
done
command -v nats-server >/dev/null ||
    { echo "run.sh --fleet: nats-server is missing (scripts/setup.sh installs it)" >&2; exit 2; }
fleet_dir="$data_dir/fleet"
run_dir="$fleet_dir/run"
mkdir -p "$fleet_dir" "$run_dir" "$fleet_dir/logs"
# One run per data directory: a second one would take over the first one's
# pid files (whose Ctrl-C would then leave everything running) and share its
# databases. Every process of the run inherits the lock, so it is held until
# the last of them is gone.
exec 9>>"$run_dir/lock"
flock -n 9 || { echo "run.sh --fleet: another run uses $data_dir (a process of it holds $run_dir/lock)" >&2; exit 2; }

declare -A port
if [ -n "$port_base" ]; then
    names=(nats otlp grpc query registry gateway auth users users-canary tenants
           notifications analytics)
    for i in "${!names[@]}"; do port[${names[$i]}]=$((port_base + i)); done
else
    port=([nats]=4222 [otlp]=4318 [grpc]=4317 [query]=16686 [registry]=8500 [gateway]=8080
          [auth]=8101 [users]=8102 [tenants]=8103 [notifications]=8104 [analytics]=8105
          [users-canary]=8112)
fi
# A port something already listens on (another run, another program) would
# pass the start checks below while the process meant for it fails.
for name in "${!port[@]}"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/${port[$name]}") 2>/dev/null; then
        echo "run.sh --fleet: port ${port[$name]} ($name) is in use${port_base:+ (--port-base $port_base)}; is another run going?" >&2
        exit 2
    fi
done
rm -f "$run_dir"/*.pid "$run_dir"/*.hold "$run_dir/stopping"

# Keys made once: the shared HS256 service key and auth's Ed25519 user-token
# seed (only auth reads it; the gateway fetches auth's public key).
[ -s "$fleet_dir/service.key" ] || (umask 077; openssl rand -base64 32 > "$fleet_dir/service.key")
[ -s "$fleet_dir/user.key" ] || (umask 077; openssl rand -hex 32 > "$fleet_dir/user.key")

# The rules: fleet/rules as they are, or a copy with a shorter evaluation
# interval and `for` (tests that must see alerts fire and resolve quickly).
rules_dir=fleet/rules
if [ -n "$rule_interval$rule_for" ]; then
    rules_dir="$fleet_dir/rules"
    rm -rf "$rules_dir"
    mkdir -p "$rules_dir"
    for f in fleet/rules/*.yml; do
        sed -E ${rule_interval:+-e "s/^([[:space:]]*)interval:.*/\1interval: $rule_interval/"} \
            ${rule_for:+-e "s/^([[:space:]]*)for:.*/\1for: $rule_for/"} "$f" > "$rules_dir/${f##*/}"
    done
    "$bin/sightline" rules check "$rules_dir"/*.yml >/dev/null
fi

registry=http://127.0.0.1:${port[registry]}
nats=nats://127.0.0.1:${port[nats]}
otlp=http://127.0.0.1:${port[otlp]}

# stop NAME...: SIGTERM to the current process of each, then wait (up to 20 s)
# until they are gone, so that what they flush on the way out (telemetry,
# deregistration) still finds the next layer up; SIGKILL for what is left.
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
    for p in "${left[@]}"; do
        kill -KILL "$p" 2>/dev/null && echo "run.sh --fleet: pid $p did not stop within 20 s; killed" >&2
    done
    return 0
}

stop_all() { # EXIT-STATUS
    # A second Ctrl-C would leave the layers not yet stopped running (each
    # runs in its own session): the stop goes on (each layer is SIGKILLed
    # after 20 s at worst).
    trap '' INT TERM
    trap - EXIT
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
    # A supervisor that was just restarting its process when the stop began
    # may have started it after its layer went down: stop what is left.
    local f rest=()
    for f in "$run_dir"/*.pid; do
        [ -e "$f" ] && f=${f##*/} && rest+=("${f%.pid}")
    done
    [ ${#rest[@]} -gt 0 ] && stop "${rest[@]}"
    wait 2>/dev/null || true
    rm -f "$run_dir"/*.pid "$run_dir"/*.hold
    echo "run.sh --fleet: stopped" >&2
    exit "$1"
}
# Ctrl-C and SIGTERM are a normal stop (status 0); a failure at start (a
# process that does not come up) keeps its status.
trap 'stop_all 0' INT TERM
trap 'stop_all $?' EXIT

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
            local child=$! rc=0
            echo "$child" > "$run_dir/$name.pid"
            # (bash's own "Killed" notice is silenced: the line below says it)
            { wait "$child"; } 2>/dev/null || rc=$?
            [ -e "$run_dir/stopping" ] && break
            if [ $rc -gt 128 ]; then rc="killed by signal $((rc - 128))"; else rc="status $rc"; fi
            echo "run.sh --fleet: $name exited ($rc); restarting" >&2
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

supervise nats nats-server -a 127.0.0.1 -p "${port[nats]}" -js -sd "$fleet_dir/nats"
wait_port nats "${port[nats]}"

checks=""
for s in gateway registry auth users tenants notifications analytics; do
    checks="${checks:+$checks,}$s=http://127.0.0.1:${port[$s]}/health"
done
supervise sightline "$bin/sightline" serve --data-dir "$data_dir" --ui-dir ./ui-static \
    --otlp-http-port "${port[otlp]}" --otlp-grpc-port "${port[grpc]}" \
    --query-port "${port[query]}" --rules-dir "$rules_dir" --health-checks "$checks"
wait_port sightline "${port[otlp]}"

export OTEL_EXPORTER_OTLP_ENDPOINT="$otlp"
common=(--registry "$registry" --nats "$nats" --service-key-file "$fleet_dir/service.key")

supervise registry "$bin/fleet/registry/fleet-registry" --listen "127.0.0.1:${port[registry]}" \
    --db "$fleet_dir/registry.db" --service-key-file "$fleet_dir/service.key"
wait_port registry "${port[registry]}"

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
start_service auth "$bin/fleet/auth/fleet-auth" "${port[auth]}" 1.0.0 --user-key-file "$fleet_dir/user.key"
start_service users "$bin/fleet/users/fleet-users" "${port[users]}" 1.0.0
start_service users-canary "$bin/fleet/users/fleet-users" "${port[users-canary]}" 2.0.0 --tags canary
start_service tenants "$bin/fleet/tenants/fleet-tenants" "${port[tenants]}" 1.0.0
start_service notifications "$bin/fleet/notifications/fleet-notifications" "${port[notifications]}" 1.0.0
start_service analytics "$bin/fleet/analytics/fleet-analytics" "${port[analytics]}" 1.0.0
supervise gateway env OTEL_SERVICE_NAME=gateway "$bin/fleet/gateway/fleet-gateway" \
    --listen "127.0.0.1:${port[gateway]}" --routes fleet/gateway/routes.yaml "${common[@]}"
for s in "${started[@]}" gateway; do wait_port "$s" "${port[$s]}"; done

cat >&2 <<MSG
run.sh --fleet: everything is up.
  Sightline UI     http://127.0.0.1:${port[query]}   (traces, logs, metrics, alerts, fleet health)
  gateway          http://127.0.0.1:${port[gateway]}    (routes: fleet/gateway/routes.yaml)
  registry         $registry/v1/registry/services
  logs             $fleet_dir/logs/
Ctrl-C stops everything.
MSG

if [ "$loadgen" = 1 ]; then
    args=(--gateway "http://127.0.0.1:${port[gateway]}" --rate "$rate" --registry "$registry"
          --service-key-file "$fleet_dir/service.key" --pid-dir "$run_dir")
    [ -n "$chaos" ] && args+=(--chaos "$chaos" --chaos-period "$chaos_period")
    setsid "$bin/fleet/loadgen/fleet-loadgen" "${args[@]}" &
    echo $! > "$run_dir/loadgen.pid"
    wait $! || true
fi
wait
