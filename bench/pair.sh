#!/usr/bin/env bash
# Paired light-load CPU comparison: two servers on CPU 0 at the same time, each fed by its
# own pushman-bench (latency phase, fixed rate) on CPU 1; prints each server's CPU share and
# the ratio B/A per pair.
#
# Why: on a VM the CPU a server needs at 10,000 pushes/s moves ±15 % from one run to the
# next for the same binary (host noise), so alternating runs need dozens of repetitions to
# show a 5 % difference. Run side by side, both servers see the same moment of the host:
# two copies of one binary read B/A 1.010-1.017. The two generators share CPU 1, so the
# latency figures here are not comparable with bench/run.sh's (p50 ~300 µs); only the CPU
# is. Build first (bench/run.sh does).
#
#   bench/pair.sh 3 pushman daemon                  # examples/push (A) vs the daemon (B)
#   bench/pair.sh 3 daemon@/tmp/old-tree daemon     # an older build (A) vs this one (B)
#   ROW=4x256 bench/pair.sh 3 pushman daemon        # throughput in a burst, side by side
#
# With ROW (a sweep row, BACKENDSxWINDOW), each generator runs that row ROW_REPEAT times
# instead: both servers saturated, sharing CPU 0 (about half of it each), so the ratio of
# their delivered/s is the ratio of their cost per push at that moment of the host; per
# pair it prints each row's rates and B/A, then the median B/A of the rows after the
# first (the first may overlap the other's connect phase).
#
# Env: CONNS (5000 per server), RATE (10000), DURATION (5), OUT (/tmp/pushman-pair),
#      ROW (unset), ROW_REPEAT (4).
# KIND is pushman (examples/push), daemon (compatibility mode) or ceiling.
set -euo pipefail
cd "$(dirname "$0")/.."
if (($# != 3)); then
    echo "usage: bench/pair.sh N KIND[@DIR] KIND[@DIR]" >&2
    exit 2
fi
N=$1
A=$2
B=$3
CONNS=${CONNS:-5000}
RATE=${RATE:-10000}
DURATION=${DURATION:-5}
OUT=${OUT:-/tmp/pushman-pair}
BENCH=target/release/pushman-bench
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)"
# shellcheck source=bench/daemon_config.sh
source bench/daemon_config.sh

# start KIND[@DIR] PORT: starts the server on 127.0.0.1:PORT (ws) and PORT+1 (text) on
# CPU 0; prints its pid.
start() {
    local kind=${1%@*} dir=. port=$2
    [[ $1 == *@* ]] && dir=${1#*@}
    local ws=127.0.0.1:$port text=127.0.0.1:$((port + 1))
    case $kind in
    pushman) taskset -c 0 "$dir/target/release/examples/push" "$ws" "$text" >"$OUT/s$port.log" 2>&1 & ;;
    daemon)
        daemon_config "$ws" "$text" "" "" "" "$OUT/d$port" >"$OUT/d$port.toml"
        rm -rf "$OUT/d$port-data" "$OUT/d$port.pid"
        taskset -c 0 "$dir/target/release/pushman" start --config "$OUT/d$port.toml" >"$OUT/s$port.log" 2>&1 &
        ;;
    ceiling) taskset -c 0 target/release/ceiling "$ws" "$text" >"$OUT/s$port.log" 2>&1 & ;;
    *) echo "unknown server $1 (pushman[@DIR], daemon[@DIR], ceiling)" >&2; exit 2 ;;
    esac
    echo $!
}

ROW_REPEAT=${ROW_REPEAT:-4}
if [[ -n ${ROW:-} ]]; then
    load=(--sweep "$(printf "$ROW,%.0s" $(seq "$ROW_REPEAT"))")
    load[1]=${load[1]%,}
    budget=$((60 + 3 * ROW_REPEAT * DURATION))
else
    load=(--phase latency --rates "$RATE")
    budget=$((60 + 2 * DURATION))
fi

# feed PORT PID LABEL: the load (a latency phase, or ROW's repeats) against the server on
# PORT, bounded in time.
feed() {
    timeout "$budget" taskset -c 1 "$BENCH" --ws "127.0.0.1:$1" --text "127.0.0.1:$(($1 + 1))" \
        --pid "$2" --conns "$CONNS" "${load[@]}" --duration "$DURATION" \
        --label "$3" >"$OUT/$3.txt" 2>"$OUT/$3.err"
}

for _ in $(seq "$N"); do
    pa=$(start "$A" 26001)
    pb=$(start "$B" 26011)
    sleep 1
    feed 26001 "$pa" a &
    fa=$!
    feed 26011 "$pb" b || true
    wait "$fa" || true
    kill "$pa" "$pb" 2>/dev/null || true
    wait "$pa" "$pb" 2>/dev/null || true
    python3 - "$OUT/a.txt" "$OUT/b.txt" "$A" "$B" "${ROW:-}" <<'EOF'
import json, statistics, sys
a, b = (json.loads(open(f).read().strip().splitlines()[-1]) for f in sys.argv[1:3])
name_a, name_b, row = sys.argv[3:6]
if not row:
    a, b = a["latency"][0], b["latency"][0]
    print("A %s %.3f  B %s %.3f  B/A %.3f  (lost %d %d)" % (
        name_a, a["server_cpu"], name_b, b["server_cpu"],
        b["server_cpu"] / a["server_cpu"], a["lost"], b["lost"]))
    sys.exit()
rows = list(zip(a["sweep"], b["sweep"]))
rates = [(x["delivered_per_sec"], y["delivered_per_sec"]) for x, y in rows]
lost = sum(r["lost"] + r["duplicated"] + r["corrupted"] for r in a["sweep"] + b["sweep"])
cells = "  ".join("%.0fk/%.0fk %.3f (cpu %.0f/%.0f%%, gen %.0f/%.0f%%)" % (
    x["delivered_per_sec"] / 1e3, y["delivered_per_sec"] / 1e3,
    y["delivered_per_sec"] / x["delivered_per_sec"], 100 * x["server_cpu"],
    100 * y["server_cpu"], 100 * x["gen_cpu"], 100 * y["gen_cpu"]) for x, y in rows)
print("%s A %s B %s: %s  median B/A %.3f  (lost %d)" % (
    row, name_a, name_b, cells, statistics.median(y / x for x, y in rates[1:]), lost))
EOF
    sleep 1
done
