#!/usr/bin/env bash
# Side-by-side benchmark: load generator -> local app directly, and
# load generator -> server /webhook/<id> -> WebSocket -> client -> the same app.
#
#   bench/run.sh            full run against the release build (build it first:
#                           swift build -c release --product webhook-over-websocket)
#   bench/run.sh --smoke    seconds, for CI: checks that everything runs and
#                           that no request fails; no assertions on speed
#   bench/run.sh --idle-only  only the idle-clients phase (below)
#
# Full mode ends with the idle-clients phase: server memory per idle connected
# client at IDLE_CLIENTS clients (default "1000 10000"; empty skips it), and
# the server's CPU while they sit idle. See bench/idle-clients.py.
#
# Target app: the project's own `echo` (answers 200 and streams the body
# back), so the direct path and the tunnelled path end at the same app and
# both include a response body as large as the request.
# Needs wrk (Debian package `wrk`) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."

SMOKE=0
IDLE_ONLY=0
BIN=${BIN:-.build/release/webhook-over-websocket}
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-"1 16 64"}
SIZES=${SIZES:-"1024 65536"}
BIG=${BIG:-$((1024 * 1024 * 1024))}
IDLE_CLIENTS=${IDLE_CLIENTS-"1000 10000"}
IDLE_SETTLE=${IDLE_SETTLE:-35}
for arg in "$@"; do
  case "$arg" in
    --smoke) SMOKE=1 ;;
    --idle-only) IDLE_ONLY=1 ;;
    *) echo "unknown argument: $arg" >&2; exit 64 ;;
  esac
done
if [ "$SMOKE" = 1 ]; then
  BIN=${BIN_SMOKE:-$([ -x .build/release/webhook-over-websocket ] && echo .build/release/webhook-over-websocket || echo .build/debug/webhook-over-websocket)}
  DURATION=1s; CONCURRENCY="1 16"; SIZES="1024"; BIG=$((16 * 1024 * 1024))
fi
[ -x "$BIN" ] || { echo "no binary at $BIN: build it first" >&2; exit 1; }
[ "$IDLE_ONLY" = 1 ] || command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 1; }

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

# Server memory per idle connected client, and the server's CPU while they
# sit idle. Each point starts a fresh server; bench/idle-clients.py opens N
# clients the way the real client does (GET /new, then the WebSocket upgrade
# with the v2 subprotocol and the token), 64 at a time, answers the server's
# pings and pings it every 15 s, holds them IDLE_SETTLE seconds (35: every
# client has been through two server pings, so one that failed to answer
# would be gone), compares the server's VmRSS (/proc/PID/status) with its
# VmRSS before the first client, samples its CPU (/proc/PID/stat) for 10 s,
# and checks that every client is still connected and that /metrics says
# wow_channels_connected = N. The figure counts everything a client costs
# the server: its channel (from /new) and its connection.
idle_phase() {
  command -v python3 >/dev/null || { echo "python3 is missing" >&2; FAILED=1; return; }
  # N sockets in the server and N in python3: raise the open-file limit as far as
  # allowed (the hard limit only with CAP_SYS_RESOURCE); both processes inherit it.
  local hard limit
  hard=$(ulimit -Hn)
  [ "$hard" = unlimited ] && hard=$(cat /proc/sys/fs/nr_open)
  if [ "$hard" -lt 25000 ]; then ulimit -Hn 25000 2>/dev/null && hard=25000; fi
  ulimit -Sn "$hard"
  limit=$(ulimit -Sn)
  echo "idle clients: fresh server per point, settle ${IDLE_SETTLE}s, open-file limit $limit$([ "$limit" -ge 25000 ] || echo " (the hard limit here; 25000 was not allowed)")"
  printf '%-8s | %11s %11s | %10s | %8s | %9s | %s\n' clients "rss0 KiB" "rss KiB" KiB/client "cpu %" "connect s" "still connected / wow_channels_connected"
  local n out
  field() { echo "$out" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
  for n in $IDLE_CLIENTS; do
    if [ "$limit" -lt $((n + 1024)) ]; then
      echo "  !! $n idle clients need an open-file limit of at least $((n + 1024)), this shell allows $limit" >&2
      FAILED=1; continue
    fi
    start idle "listening" "$BIN" server --host 127.0.0.1 --port 0 --max-channels $((n + 1000)) --log-level error
    local ok=1
    out=$(python3 bench/idle-clients.py --server-url "http://127.0.0.1:$(port_of idle)" --pid "$idle_PID" \
      -n "$n" --settle "$IDLE_SETTLE" --cpu-seconds 10 2>"$WORK/idle-$n.err") || ok=0
    kill "$idle_PID" 2>/dev/null || true
    wait "$idle_PID" 2>/dev/null || true
    if [ -z "$out" ]; then
      echo "  !! idle clients n=$n did not finish:" >&2; tail -5 "$WORK/idle-$n.err" >&2; FAILED=1; continue
    fi
    printf '%-8s | %11s %11s | %10s | %8s | %9s | %s / %s\n' "$n" "$(field before_kib)" "$(field after_kib)" \
      "$(field per_client_kib)" "$(field cpu_pct)" "$(field connect_s)" "$(field connected)" "$(field metric_connected)"
    if [ "$ok" = 0 ]; then
      echo "  !! idle clients n=$n: $(field errors) failed to connect, $(field dropped) dropped, $(field unanswered) with unanswered pings" >&2
      grep -E 'error:|dropped:' "$WORK/idle-$n.err" | head -5 >&2 || true
      FAILED=1
    fi
  done
}
if [ "$IDLE_ONLY" = 1 ]; then
  FAILED=0
  echo "binary: $BIN"
  idle_phase
  [ "$FAILED" = 0 ] || { echo "the idle-clients phase failed" >&2; exit 1; }
  exit 0
fi

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
  # wrk's own count: response() in post.lua runs in each thread's Lua state, done() in another.
  non2xx=$(echo "$out" | awk '/Non-2xx or 3xx responses:/ {print $5}')
  non2xx=${non2xx:-0}
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

if [ "$SMOKE" = 0 ] && [ -n "$IDLE_CLIENTS" ]; then idle_phase; fi

if [ "$FAILED" != 0 ]; then echo "benchmark saw failed requests" >&2; exit 1; fi
