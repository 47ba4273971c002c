#!/usr/bin/env bash
# Side-by-side benchmark: examples/push (pushman) vs tokio-ref --runtime current.
# Builds both in release, runs each server pinned to CPU 0 and pushman-bench pinned to
# CPU 1, REPS times interleaved, prints medians side by side with ratios, and keeps the raw
# JSON lines in $OUT. Everything is on loopback and stops by itself (each run is bounded
# by `timeout`).
#
#   bench/run.sh                      # N=10000, 3 repetitions, 5 s phases
#   CONNS=2000 REPS=1 DURATION=2 bench/run.sh
#   NICE=-10 bench/run.sh             # run server and generator at a higher priority
#
# Env: CONNS (10000), REPS (3), DURATION (5), BACKENDS (4), OUT (/tmp/pushman-bench.<date>),
#      NICE (0), TOKIO_REF (/work/shared/bench/tokio-ref), PORT_BASE (23400).
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${CONNS:-10000}
REPS=${REPS:-3}
DURATION=${DURATION:-5}
BACKENDS=${BACKENDS:-4}
NICE=${NICE:-0}
TOKIO_REF=${TOKIO_REF:-/work/shared/bench/tokio-ref}
PORT_BASE=${PORT_BASE:-23400}
OUT=${OUT:-/tmp/pushman-bench.$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"

# 19,900 clients fit under the 20,000 open-files limit; each side needs N + a few fds.
ulimit -n "$(ulimit -Hn)"

echo "building (release)..." >&2
cargo build --release -q --example push -p pushman
cargo build --release -q -p pushman-bench
(cd "$TOKIO_REF" && CARGO_TARGET_DIR=/tmp/tokio-ref cargo build --release -q)

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
    # Generous bound: connect + 2 s drain + 3 timed phases + broadcasts.
    local limit=$((60 + 4 * ${DURATION%.*} + 40))
    if nice -n "$NICE" timeout "$limit" taskset -c 1 "$BENCH" --ws "$ws" --text "$text" --pid "$pid" \
        --conns "$CONNS" --backends "$BACKENDS" --duration "$DURATION" --label "$name" \
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

for rep in $(seq "$REPS"); do
    echo "== rep $rep/$REPS: pushman (examples/push)" >&2
    run_one pushman "127.0.0.1:$((PORT_BASE + 1))" "127.0.0.1:$((PORT_BASE + 2))" \
        target/release/examples/push "127.0.0.1:$((PORT_BASE + 1))" "127.0.0.1:$((PORT_BASE + 2))"
    echo "== rep $rep/$REPS: tokio-ref --runtime current" >&2
    run_one tokio-ref "127.0.0.1:$((PORT_BASE + 3))" "127.0.0.1:$((PORT_BASE + 4))" \
        /tmp/tokio-ref/release/tokio-ref --ws "127.0.0.1:$((PORT_BASE + 3))" \
        --text "127.0.0.1:$((PORT_BASE + 4))" --runtime current
done

python3 bench/summary.py "$OUT/results.jsonl" | tee "$OUT/summary.txt"
echo "raw JSON lines: $OUT/results.jsonl" >&2
