#!/usr/bin/env bash
# Side-by-side benchmark: load generator -> local app directly, and
# load generator -> server /webhook/<id> -> WebSocket -> client -> the same app.
#
#   bench/run.sh            full run against the release build (build it first:
#                           swift build -c release --product webhook-over-websocket)
#   bench/run.sh --smoke    seconds, for CI: checks that everything runs and
#                           that no request fails; no assertions on speed
#
# Target app: the project's own `echo` (answers 200 and streams the body
# back), so the direct path and the tunnelled path end at the same app and
# both include a response body as large as the request.
# Needs wrk (Debian package `wrk`) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."

SMOKE=0
BIN=${BIN:-.build/release/webhook-over-websocket}
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-"1 16 64"}
SIZES=${SIZES:-"1024 65536"}
BIG=${BIG:-$((1024 * 1024 * 1024))}
for arg in "$@"; do
  case "$arg" in
    --smoke) SMOKE=1 ;;
    *) echo "unknown argument: $arg" >&2; exit 64 ;;
  esac
done
if [ "$SMOKE" = 1 ]; then
  BIN=${BIN_SMOKE:-$([ -x .build/release/webhook-over-websocket ] && echo .build/release/webhook-over-websocket || echo .build/debug/webhook-over-websocket)}
  DURATION=1s; CONCURRENCY="1 16"; SIZES="1024"; BIG=$((16 * 1024 * 1024))
fi
[ -x "$BIN" ] || { echo "no binary at $BIN: build it first" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 1; }

WORK=$(mktemp -d)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

# Starts a process in the background and waits for a line matching $2 on its stdout.
start() {
  local name=$1 pattern=$2; shift 2
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=($!)
  eval "${name}_PID=$!"
  for _ in $(seq 1 200); do
    grep -q "$pattern" "$WORK/$name.out" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "$name did not start:" >&2; cat "$WORK/$name.err" >&2; exit 1
}
port_of() { grep -o 'http://127.0.0.1:[0-9]*' "$WORK/$1.out" | head -1 | sed 's/.*://'; }

start echo "listening" "$BIN" echo --host 127.0.0.1 --port 0 --log-level error
ECHO=$(port_of echo)
start server "listening" "$BIN" server --host 127.0.0.1 --port 0 --max-body-size 2GiB --request-timeout 5m --log-level error
SERVER=$(port_of server)
start client "A tunnel" "$BIN" client --server-url "http://127.0.0.1:$SERVER" --target-url "http://127.0.0.1:$ECHO" \
  --state-dir "$WORK/state" --transfer-request-timeout 5m --log-level error
CHANNEL=$(grep 'Issued Channel ID' "$WORK/client.out" | awk '{print $4}')

DIRECT="http://127.0.0.1:$ECHO/bench"
TUNNEL="http://127.0.0.1:$SERVER/webhook/$CHANNEL/bench"
FAILED=0

run_wrk() { # url size concurrency -> "rps p50 p90 p99"
  local threads=$(( $3 < 2 ? 1 : 2 ))
  local out
  out=$(BODY_SIZE=$2 wrk -t "$threads" -c "$3" -d "$DURATION" -s bench/post.lua "$1" 2>&1)
  local rps bench
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  bench=$(echo "$out" | grep '^BENCH')
  local non2xx errors
  non2xx=$(echo "$bench" | sed 's/.*non2xx=\([0-9]*\).*/\1/')
  errors=$(echo "$bench" | sed 's/.*errors=\([0-9]*\).*/\1/')
  if [ "$non2xx" != 0 ] || [ "$errors" != 0 ]; then FAILED=1; echo "  !! $1 c=$3: $non2xx non-2xx, $errors socket errors" >&2; fi
  echo "$rps $(echo "$bench" | sed 's/.*p50=\([0-9.]*\) p90=\([0-9.]*\) p99=\([0-9.]*\).*/\1 \2 \3/')"
}

echo "binary: $BIN   duration per point: $DURATION"
printf '%-6s %-4s | %10s %8s %8s %8s | %10s %8s %8s %8s | %6s %9s\n' body c direct/s p50ms p90ms p99ms tunnel/s p50ms p90ms p99ms ratio +p50ms
for size in $SIZES; do
  for c in $CONCURRENCY; do
    read -r drps dp50 dp90 dp99 <<<"$(run_wrk "$DIRECT" "$size" "$c")"
    read -r trps tp50 tp90 tp99 <<<"$(run_wrk "$TUNNEL" "$size" "$c")"
    ratio=$(awk -v t="$trps" -v d="$drps" 'BEGIN { printf "%.2f", (d > 0 ? t / d : 0) }')
    added=$(awk -v t="$tp50" -v d="$dp50" 'BEGIN { printf "%.3f", t - d }')
    printf '%-6s %-4s | %10s %8s %8s %8s | %10s %8s %8s %8s | %6s %9s\n' \
      "$((size / 1024))KiB" "$c" "$drps" "$dp50" "$dp90" "$dp99" "$trps" "$tp50" "$tp90" "$tp99" "$ratio" "$added"
  done
done

# One large streamed body through the tunnel (echoed back), from a sparse file.
truncate -s "$BIG" "$WORK/big"
start_ns=$(date +%s%N)
status=$(curl -s -o /dev/null -w "%{http_code}" -X POST -T "$WORK/big" -H "Content-Type: application/octet-stream" "$TUNNEL" || true)
end_ns=$(date +%s%N)
secs=$(awk -v a="$start_ns" -v b="$end_ns" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
mbps=$(awk -v s="$secs" -v n="$BIG" 'BEGIN { printf "%.0f", (s > 0 ? n / 1048576 / s : 0) }')
hwm() { awk '/VmHWM/ {printf "%d", $2 / 1024}' "/proc/$1/status"; }
echo "large body: $((BIG / 1048576)) MiB up and echoed back: HTTP $status in ${secs}s (${mbps} MiB/s each way); VmHWM server $(hwm "$server_PID") MiB, client $(hwm "$client_PID") MiB"
[ "$status" = 200 ] || FAILED=1

if [ "$FAILED" != 0 ]; then echo "benchmark saw failed requests" >&2; exit 1; fi
