#!/usr/bin/env bash
# Autobahn|Testsuite (fuzzingclient, cases 1-10) against a wss:// echo server:
#   .ci/autobahn-wss.sh HOST:PORT [OUTDIR]
# The shared rig's run.sh speaks ws:// only; this is its sequence with a wss:// URL
# (wstest's Twisted client does TLS with pyOpenSSL, which the rig installs, and does not
# verify the certificate: the echo example's is self-signed). Same summary, same exit
# codes: 0 only when nothing failed.
set -euo pipefail
TARGET="${1:?usage: autobahn-wss.sh HOST:PORT [OUTDIR]}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RIG="${PUSHMAN_SHARED:-$ROOT/../shared}/tools/autobahn"
OUTDIR="${2:-/tmp/autobahn-reports/wss_${TARGET//[^A-Za-z0-9.]/_}}"
mkdir -p "$OUTDIR"
OUTDIR="$(cd "$OUTDIR" && pwd)"
"$RIG/setup.sh" >&2
PY="${AUTOBAHN_PREFIX:-/opt/autobahn}/bin/python2.7"
export PYTHONIOENCODING=utf-8
SPEC="$OUTDIR/fuzzingclient.json"
"$PY" "$RIG/abrig.py" spec "$SPEC" "wss://$TARGET" testee "$OUTDIR" "" "12.*,13.*"
"$PY" "$RIG/abrig.py" cases "$SPEC" "$OUTDIR/expected-cases.json"
rm -f "$OUTDIR/index.json" "$OUTDIR/index.html" "$OUTDIR/stream.jsonl"
START=$(date +%s.%N)
set +e
(cd "$OUTDIR" && exec timeout --kill-after=10 "${AUTOBAHN_TIMEOUT:-1100}" \
    "$PY" "$RIG/abrig.py" wstest "$OUTDIR/stream.jsonl" -m fuzzingclient -s "$SPEC") \
    >"$OUTDIR/wstest.log" 2>&1
RC=$?
set -e
SECS=$(awk -v a="$START" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
"$PY" "$RIG/abrig.py" summary "$OUTDIR" "$OUTDIR/expected-cases.json" "$RC" "$OUTDIR/wstest.log" "$SECS"
