#!/usr/bin/env bash
# Server RSS just after start, ours beside the smallest servers our stack allows, in one run
# (docs/performance.md, "Server RSS just after start: the stack's floor").
#
#   bench/start-rss.sh     builds bench/start-rss (release) and measures, ROUNDS times each:
#     nio-hello           SwiftNIO alone, an HTTP/1 server answering 200 (no Foundation)
#     hummingbird-hello   Hummingbird 2 with one route
#     stack-hello         every library the server links, each set up once
#     ours                BIN server (default .build-release/release/webhook-over-websocket)
#
# Each figure is VmRSS at the process's "listening" line. Before each start the binary's pages are
# dropped from the page cache (posix_fadvise DONTNEED), so every binary is read from disk the same
# way: a file just written (a fresh build) sits in larger page-cache folios and measures about
# 2 MiB more. Environment: BIN, ROUNDS (3), SCRATCH (bench/start-rss/.build).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build-release/release/webhook-over-websocket}
ROUNDS=${ROUNDS:-3}
SCRATCH=${SCRATCH:-bench/start-rss/.build}
[ -x "$BIN" ] || { echo "no binary at $BIN (swift build -c release --scratch-path .build-release --product webhook-over-websocket)" >&2; exit 1; }
swift build -c release --package-path bench/start-rss --scratch-path "$SCRATCH" >&2
PROBES="$SCRATCH/release"

WORK=$(mktemp -d)
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

evict() { python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' "$1"; }

# measure name binary args...: prints "name rss_kib foundation_kib" (Foundation = the four Foundation
# libraries and ICU, as mapped by the process).
measure() {
  local name=$1 bin=$2 rss foundation
  shift 2
  evict "$bin"
  rm -rf "$WORK/data" && mkdir -p "$WORK/data"
  "$bin" "$@" > "$WORK/out" 2>&1 &
  PID=$!
  for _ in $(seq 600); do
    grep -q listening "$WORK/out" && break
    kill -0 "$PID" 2>/dev/null || { echo "$name exited before listening:" >&2; cat "$WORK/out" >&2; exit 1; }
    sleep 0.05
  done
  grep -q listening "$WORK/out" || { echo "$name did not start" >&2; exit 1; }
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$PID/status")
  foundation=$(awk '/^[0-9a-f]+-[0-9a-f]+ / {f = ($6 ~ /lib(_)?Foundation/)} /^Rss:/ && f {s += $2} END {print s + 0}' "/proc/$PID/smaps")
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  PID=""
  echo "$name $rss $foundation"
}

for _ in $(seq "$ROUNDS"); do
  measure nio-hello "$PROBES/nio-hello"
  measure hummingbird-hello "$PROBES/hummingbird-hello"
  measure stack-hello "$PROBES/stack-hello" --data-dir "$WORK/data"
  measure ours "$BIN" server --host 127.0.0.1 --port 0 --log-level error --data-dir "$WORK/data"
done > "$WORK/rows"

echo "server RSS just after start, median of $ROUNDS (MiB; Foundation = libFoundation*, lib_FoundationICU)"
printf '%-18s %8s %11s %14s\n' binary RSS Foundation "/ hummingbird"
# Rows sorted by name, then RSS: each binary's median row is its middle one.
sort -k1,1 -k2,2n "$WORK/rows" | awk -v m="$(((ROUNDS + 1) / 2))" '
  { i = ++seen[$1]; rss[$1, i] = $2; foundation[$1, i] = $3 }
  END {
    n = split("nio-hello hummingbird-hello stack-hello ours", names, " ")
    for (k = 1; k <= n; k++) {
      x = names[k]
      printf "%-18s %8.1f %11.1f %14.2f\n", x, rss[x, m] / 1024, foundation[x, m] / 1024, rss[x, m] / rss["hummingbird-hello", m]
    }
  }'
