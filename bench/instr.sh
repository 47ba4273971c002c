#!/usr/bin/env bash
# Instructions per push line, under callgrind: a count that does not move with the VM's
# timing noise, for comparing what two builds (or examples/push and the daemon) do per line.
#
# Runs the server under valgrind (instrumentation off until the load is steady), feeds it a
# sweep row with pushman-bench for DURATION seconds, counts instructions for MEASURE seconds
# in the middle, and prints instructions per line (lines = frames queued / 2: each line is
# one frame and one reply) and the functions that cost the most per line. Valgrind runs the
# server ~20-50x slower, so rates here mean nothing; only the per-line counts do. Caches,
# the kernel and syscalls are not counted: timing still needs bench/run.sh.
#
#   bench/instr.sh pushman                 # examples/push
#   bench/instr.sh daemon                  # the daemon, compatibility mode
#   bench/instr.sh daemon@/tmp/old-tree    # another tree's build
#
# Env: CONNS (1000), ROW (4x32), DURATION (40), WARMUP (8), MEASURE (5), TOP (25),
#      OUT (/tmp/pushman-instr). Needs valgrind (Debian: `apt-get install valgrind`).
set -euo pipefail
cd "$(dirname "$0")/.."
if (($# != 1)); then
    echo "usage: bench/instr.sh KIND[@DIR]   (KIND: pushman or daemon)" >&2
    exit 2
fi
command -v valgrind >/dev/null || { echo "bench/instr.sh: valgrind is not installed" >&2; exit 2; }
CONNS=${CONNS:-1000}
ROW=${ROW:-4x32}
DURATION=${DURATION:-40}
WARMUP=${WARMUP:-8}
MEASURE=${MEASURE:-5}
TOP=${TOP:-25}
OUT=${OUT:-/tmp/pushman-instr}
kind=${1%@*} dir=.
[[ $1 == *@* ]] && dir=${1#*@}
mkdir -p "$OUT"
# shellcheck source=bench/daemon_config.sh
source bench/daemon_config.sh
cargo build --release --example push -p pushman -p pushman-server -p pushman-bench -q
ws=127.0.0.1:25301 text=127.0.0.1:25302
case $kind in
pushman) cmd=("$dir/target/release/examples/push" "$ws" "$text") ;;
daemon)
    daemon_config "$ws" "$text" >"$OUT/daemon.toml"
    rm -rf "$OUT/daemon-data" "$OUT/daemon.pid"
    cmd=("$dir/target/release/pushman" start --config "$OUT/daemon.toml")
    ;;
*) echo "unknown server $1 (pushman[@DIR], daemon[@DIR])" >&2; exit 2 ;;
esac
profile=$OUT/callgrind.$kind.out
rm -f "$profile"
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$profile" "${cmd[@]}" \
    >"$OUT/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
sleep 3
ulimit -n "$(ulimit -Hn)"
timeout $((DURATION + 60)) target/release/pushman-bench --ws "$ws" --text "$text" --pid "$server" \
    --conns "$CONNS" --backends "${ROW%x*}" --duration "$DURATION" --sweep "$ROW" \
    --label "$kind" >"$OUT/bench.txt" 2>&1 &
bench=$!
sleep "$WARMUP"
callgrind_control -i on "$server" >/dev/null
sleep "$MEASURE"
callgrind_control -i off "$server" >/dev/null
wait "$bench" || { echo "pushman-bench failed: $OUT/bench.txt" >&2; exit 1; }
kill "$server"
wait "$server" 2>/dev/null || true
trap - EXIT
python3 - "$profile" "$TOP" <<'EOF'
import re, subprocess, sys
path, top = sys.argv[1], int(sys.argv[2])
# Calls to Batch::push: every line queues its frame and its reply there.
names, calls, cfn = {}, 0, None
for line in open(path, errors="replace"):
    m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
    if m:
        kind, idx, name = m.groups()
        if name:
            names[idx] = name
        if kind == "cfn":
            cfn = idx
    elif line.startswith("calls=") and "Batch::push" in names.get(cfn, ""):
        calls += int(line.split("=")[1].split()[0])
lines = calls // 2
out = subprocess.run(["callgrind_annotate", "--auto=no", "--threshold=100", path],
                     capture_output=True, text=True, check=True).stdout
total = int(re.search(r"^([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", out, re.M).group(1).replace(",", ""))
if lines == 0:
    sys.exit("no push line was counted")
print(f"{lines:,} lines, {total / lines:,.0f} instructions per line")
rows = re.findall(r"^\s*([\d,]+) \([\s\d.]+%\)\s+\S*?:(.*?)(?: \[.*\])?$", out, re.M)
for ir, fn in rows[:top]:
    print(f"{int(ir.replace(',', '')) / lines:8.0f}  {fn[:100]}")
EOF
