#!/usr/bin/env bash
# Side-by-side benchmark of push.php-protocol servers, in one run: examples/push (pushman),
# the pushman daemon (compatibility mode, auth none), tokio-ref --runtime current and the
# ceiling server (bench/src/bin/ceiling.rs: the kernel's limit on this machine).
# Builds them in release, runs each server pinned to CPU 0 and pushman-bench pinned to
# CPU 1, REPS times interleaved, prints medians side by side with ratios, and keeps the raw
# JSON lines in $OUT. Everything is on loopback and stops by itself (each run is bounded
# by `timeout`).
#
#   bench/run.sh                      # N=10000, 3 repetitions, 5 s phases
#   bench/run.sh --sweep              # unicast only, by burst depth: ROWS, 3 reps, 3 s each
#   bench/run.sh --sweep --quick      # the same, 1 rep of 1 s rows (about a minute)
#   CONNS=2000 REPS=1 DURATION=2 bench/run.sh
#   NICE=-10 bench/run.sh             # run server and generator at a higher priority
#   SERVERS="pushman tokio-ref" bench/run.sh
#   SERVERS="pushman pushman@/tmp/old-tree" bench/run.sh   # two builds side by side
#   SERVERS="daemon daemon+inbox daemon+durable" bench/run.sh --sweep   # the inbox's cost
#
# daemon+inbox is the daemon with `[inbox] enabled` (memory only), daemon+durable adds
# `durable = true` (its log in the store, one commit per turn); both get an HTTP API whose
# /status pushman-bench reads around each unicast run: commits per second and bytes per
# kept push appear in its output and JSON.
#   SERVERS="daemon daemon-tls" bench/run.sh   # what wss:// costs (pushman-bench --tls)
#
# The sweep connects once per server and repetition, then runs one unicast phase per row of
# ROWS ("BACKENDSxWINDOW": backends each keeping WINDOW pushes unanswered; total in flight
# 1, 16, 128, 1,024 and 4,096 by default), each drained before the next.
#
# Env: CONNS (10000), REPS (3), DURATION (5; 3 with --sweep), BACKENDS (4),
#      ROWS ("1x1,4x4,4x32,4x256,4x1024"), OUT (/tmp/pushman-bench.<date>),
#      NICE (0), TOKIO_REF (../shared/bench/tokio-ref), PORT_BASE (23400),
#      SERVERS ("pushman daemon tokio-ref ceiling").
set -euo pipefail
cd "$(dirname "$0")/.."

SWEEP=0
QUICK=0
for arg in "$@"; do
    case $arg in
    --sweep) SWEEP=1 ;;
    --quick) QUICK=1 ;;
    *) echo "usage: bench/run.sh [--sweep [--quick]]" >&2; exit 2 ;;
    esac
done
if ((QUICK)); then
    REPS=${REPS:-1}
    DURATION=${DURATION:-1}
fi
ROWS=${ROWS:-1x1,4x4,4x32,4x256,4x1024}
CONNS=${CONNS:-10000}
REPS=${REPS:-3}
if ((SWEEP)); then DURATION=${DURATION:-3}; fi
DURATION=${DURATION:-5}
BACKENDS=${BACKENDS:-4}
NICE=${NICE:-0}
TOKIO_REF=${TOKIO_REF:-$PWD/../shared/bench/tokio-ref}
SERVERS=${SERVERS:-pushman daemon tokio-ref ceiling}
PORT_BASE=${PORT_BASE:-23400}
OUT=${OUT:-/tmp/pushman-bench.$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"

# 19,900 clients fit under the 20,000 open-files limit; each side needs N + a few fds.
ulimit -n "$(ulimit -Hn)"

echo "building (release)..." >&2
cargo build --release -q --example push -p pushman
cargo build --release -q --bin pushman -p pushman-server
cargo build --release -q -p pushman-bench
# A server given as KIND@DIR (pushman or daemon) runs DIR's build of it, labelled
# KIND@<basename of DIR>: e.g. SERVERS="pushman pushman@/tmp/old" compares two trees.
for server in $SERVERS; do
    if [[ $server == *@* ]]; then
        dir=${server#*@}
        (cd "$dir" && cargo build --release -q --example push -p pushman &&
            cargo build --release -q --bin pushman -p pushman-server)
    fi
done
if [[ " $SERVERS " == *" tokio-ref "* ]]; then
    (cd "$TOKIO_REF" && CARGO_TARGET_DIR=/tmp/tokio-ref cargo build --release -q)
fi

BENCH=target/release/pushman-bench

# run_one NAME WS TEXT CMD... : starts the server, runs the generator, stops the server.
run_one() {
    local name=$1 ws=$2 text=$3
    shift 3
    local log="$OUT/$name.server.log"
    # nice and taskset exec the server, so $! is the server's own pid.
    nice -n "$NICE" taskset -c 0 "$@" >>"$log" 2>&1 &
    local pid=$!
    # Wait until both ports accept connections (at most 5 s).
    for _ in $(seq 50); do
        if (exec 3<>"/dev/tcp/${ws%:*}/${ws##*:}") 2>/dev/null &&
           (exec 3<>"/dev/tcp/${text%:*}/${text##*:}") 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    # Generous bound: connect + 2 s drain + 3 timed phases + broadcasts (sweep: each row
    # and its drain).
    local limit=$((60 + 4 * ${DURATION%.*} + 40))
    local mode=()
    if ((SWEEP)); then
        local rows=${ROWS//[^,]/}
        limit=$((60 + (${#rows} + 1) * (${DURATION%.*} + 12)))
        mode=(--sweep "$ROWS")
    fi
    if nice -n "$NICE" timeout "$limit" taskset -c 1 "$BENCH" --ws "$ws" --text "$text" --pid "$pid" \
        --conns "$CONNS" --backends "$BACKENDS" --duration "$DURATION" --label "$name" "${mode[@]}" \
        "${BENCH_EXTRA[@]}" \
        ${BENCH_TLS:+--tls} \
        >"$OUT/$name.$rep.txt" 2>>"$OUT/$name.bench.err"; then
        tail -n 1 "$OUT/$name.$rep.txt" >>"$OUT/results.jsonl"
        head -n -1 "$OUT/$name.$rep.txt" >&2
    else
        echo "$name rep $rep: pushman-bench failed (see $OUT/$name.bench.err)" >&2
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    sleep 1 # let TIME_WAIT sockets and the other CPU settle
}

# The daemon in push.php compatibility mode: auth none, state in $OUT; an HTTP API only
# if $3 names one; $4 is extra TOML (the [inbox] section); with a fifth argument, wss://
# with that directory's cert.pem and key.pem.
# shellcheck source=bench/daemon_config.sh
source bench/daemon_config.sh

for rep in $(seq "$REPS"); do
    port=$PORT_BASE
    for server in $SERVERS; do
        ws="127.0.0.1:$((port + 1))"
        text="127.0.0.1:$((port + 2))"
        http="127.0.0.1:$((port + 3))"
        port=$((port + 3))
        BENCH_EXTRA=()
        echo "== rep $rep/$REPS: $server" >&2
        tree=.
        label=$server
        if [[ $server == *@* ]]; then
            tree=${server#*@}
            label=${server%@*}@$(basename "$tree")
        fi
        case ${server%@*} in
        pushman) run_one "$label" "$ws" "$text" "$tree/target/release/examples/push" "$ws" "$text" ;;
        daemon | daemon+inbox | daemon+durable)
            inbox=""
            case ${server%@*} in
            daemon+inbox) inbox=$'[inbox]\nenabled = true' ;;
            daemon+durable) inbox=$'[inbox]\nenabled = true\ndurable = true' ;;
            esac
            if [[ -n $inbox ]]; then
                daemon_config "$ws" "$text" "$http" "$inbox" >"$OUT/daemon.toml"
                BENCH_EXTRA=(--status "$http")
            else
                daemon_config "$ws" "$text" >"$OUT/daemon.toml"
            fi
            rm -rf "$OUT/daemon-data" "$OUT/daemon.pid"
            run_one "$label" "$ws" "$text" "$tree/target/release/pushman" start --config "$OUT/daemon.toml"
            ;;
        daemon-tls)
            # The same daemon over wss:// (a self-signed P-256 certificate; the harness
            # accepts any): what TLS costs, beside "daemon" in the same run.
            if [[ ! -f $OUT/tls/cert.pem ]]; then
                mkdir -p "$OUT/tls"
                openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
                    -days 7 -subj /CN=localhost -keyout "$OUT/tls/key.pem" \
                    -out "$OUT/tls/cert.pem" 2>/dev/null
            fi
            daemon_config "$ws" "$text" "" "" "$OUT/tls" >"$OUT/daemon.toml"
            rm -rf "$OUT/daemon-data" "$OUT/daemon.pid"
            BENCH_TLS=1 run_one "$label" "$ws" "$text" "$tree/target/release/pushman" start --config "$OUT/daemon.toml"
            ;;
        tokio-ref)
            run_one tokio-ref "$ws" "$text" /tmp/tokio-ref/release/tokio-ref \
                --ws "$ws" --text "$text" --runtime current
            ;;
        ceiling) run_one ceiling "$ws" "$text" target/release/ceiling "$ws" "$text" ;;
        *) echo "unknown server $server (pushman[@DIR], daemon[+inbox|+durable][@DIR], daemon-tls[@DIR], tokio-ref, ceiling)" >&2; exit 2 ;;
        esac
    done
done

python3 bench/summary.py "$OUT/results.jsonl" | tee "$OUT/summary.txt"
echo "raw JSON lines: $OUT/results.jsonl" >&2
