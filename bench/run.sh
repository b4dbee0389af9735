#!/usr/bin/env bash
# The benchmark: every figure is a ratio to something measured seconds apart
# in the same run, on the same machine (docs/performance.md explains the
# columns and records the results).
#
#   bench/run.sh               full run against the release build:
#                              swift build -c release --scratch-path .build-release --product webhook-over-websocket
#   bench/run.sh --smoke       every column once with tiny durations, for CI (debug
#                              binary); fails on any failed request; no speed assertions
#   bench/run.sh --idle-only   only the idle-clients phase
#   bench/run.sh --queue-only  only the offline queue's phases
#   bench/start-rss.sh         (its own script) the server's RSS at start beside the smallest
#                              servers our stack allows
#
# Load points (wrk, 1 KiB and 64 KiB POSTs at c = 1, 16, 64), each against
#   direct       wrk -> local app
#   chain        wrk -> nginx proxy -> nginx proxy -> local app (the best two-hop
#                HTTP relay from standard parts: one worker each, upstream
#                keepalive, no request or response buffering, HTTP/1.1 upstream)
#   tunnel off   wrk -> server /webhook/<id> -> WebSocket -> client -> local app,
#                client --inspect off
#   tunnel on    the same with the client's inspector on (only if the binary's
#                client has --inspect)
# The local app is Debian's nginx answering 200 with a 3-byte body once it
# has read the whole request body (see nginx_app), run as our own process
# (generated config, one worker, loopback, temp dir).
# wrk runs 2 threads (1 at c=1): the machine has 2 cores, and wrk needs
# connections >= threads.
#
# Then: large bodies (LARGE, default 100 MiB and 1 GiB) through an app that
# reads the whole body before answering (bench/body-app.py), direct and
# through a fresh server and client per size, with time and peak RSS (VmHWM)
# of server and client; server RSS just after start; the offline queue's
# ingest and drain (SQLite, and PostgreSQL if initdb/pg_ctl are installed)
# when the binary has --data-dir / --when-offline; idle clients
# (bench/idle-clients.py).
#
# Environment: BIN, DURATION (5s), CONCURRENCY ("1 16 64"), SIZES
# ("1024 65536"), LARGE (bytes, "104857600 1073741824"; empty skips), IDLE_CLIENTS
# ("1000 10000"; empty skips), IDLE_SETTLE (35), QUEUE (1; 0 skips),
# QUEUE_HOLD (0s: --offline-hold, so ingest measures storage, not waiting),
# POSTGRES (auto; 0 skips).
# Needs wrk, nginx, curl, python3 (Debian: wrk nginx-light curl python3).
# start() and client_start() set NAME_PID and NAME_CHANNEL with printf -v.
# shellcheck disable=SC2154
set -euo pipefail
cd "$(dirname "$0")/.."

SMOKE=0
IDLE_ONLY=0
QUEUE_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --smoke) SMOKE=1 ;;
    --idle-only) IDLE_ONLY=1 ;;
    --queue-only) QUEUE_ONLY=1 ;;
    *)
      echo "unknown argument: $arg" >&2
      exit 64
      ;;
  esac
done

default_bin() {
  local candidate
  for candidate in .build-release/release/webhook-over-websocket .build/release/webhook-over-websocket; do
    [ -x "$candidate" ] && { echo "$candidate"; return; }
  done
  echo .build-release/release/webhook-over-websocket
}
BIN=${BIN:-$(default_bin)}
DURATION=${DURATION:-5s}
CONCURRENCY=${CONCURRENCY:-"1 16 64"}
SIZES=${SIZES:-"1024 65536"}
LARGE=${LARGE-"104857600 1073741824"}
IDLE_CLIENTS=${IDLE_CLIENTS-"1000 10000"}
IDLE_SETTLE=${IDLE_SETTLE:-35}
IDLE_CPU_SECONDS=10
QUEUE=${QUEUE:-1}
QUEUE_HOLD=${QUEUE_HOLD:-0s}
POSTGRES=${POSTGRES:-auto}
if [ "$SMOKE" = 1 ]; then
  BIN=${BIN_SMOKE:-.build/debug/webhook-over-websocket}
  DURATION=1s
  CONCURRENCY="16"
  SIZES="1024"
  LARGE=$((16 * 1024 * 1024))
  IDLE_CLIENTS=${IDLE_CLIENTS_SMOKE:-50}
  IDLE_SETTLE=2
  IDLE_CPU_SECONDS=1
fi
[ -x "$BIN" ] || {
  echo "no binary at $BIN: build it first (see the top of $0)" >&2
  exit 1
}
for tool in curl python3; do
  command -v "$tool" >/dev/null || {
    echo "$tool is missing" >&2
    exit 1
  }
done
if [ "$IDLE_ONLY" = 0 ]; then
  for tool in wrk nginx; do
    command -v "$tool" >/dev/null || {
      echo "$tool is missing (apt-get install wrk nginx-light)" >&2
      exit 1
    }
  done
fi

WORK=$(mktemp -d)
PIDS=()
CLEANUPS=()
cleanup() {
  local pid step
  for step in "${CLEANUPS[@]}"; do eval "$step" || true; done
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
FAILED=0
declare -A FIG=() # figures for the targets summary
fail() {
  echo "  !! $*" >&2
  FAILED=1
}

# Starts a process in the background and waits (10 s at most) for a line
# matching $2 on its stdout; its pid lands in ${name}_PID. If it does not
# start, the run stops, unless OPTIONAL=1 (then it returns 1).
start() {
  local name=$1 pattern=$2
  shift 2
  # A name used before (qclient in each queue phase) left its output: gone
  # first, or the wait below could match the old lines before the new process
  # has truncated the file.
  rm -f "$WORK/$name.out" "$WORK/$name.err"
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=($!)
  printf -v "${name}_PID" '%s' "$!"
  local _
  for _ in $(seq 1 200); do
    grep -q "$pattern" "$WORK/$name.out" 2>/dev/null && return 0
    kill -0 "$!" 2>/dev/null || break
    sleep 0.05
  done
  if [ "${OPTIONAL:-0}" = 1 ]; then return 1; fi
  echo "$name did not start: $*" >&2
  cat "$WORK/$name.out" "$WORK/$name.err" >&2
  exit 1
}
stop() { # name: stops a process started with start, and waits for it
  local pid_var="${1}_PID"
  kill "${!pid_var}" 2>/dev/null || true
  wait "${!pid_var}" 2>/dev/null || true
}
port_of() { grep -o 'http://127.0.0.1:[0-9]*' "$WORK/$1.out" | head -1 | sed 's/.*://'; }
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() { # port: until something accepts on 127.0.0.1:port (10 s at most)
  local _
  for _ in $(seq 1 200); do
    (: </dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  exit 1
}
kib() { awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
metric() { # port name: a metric's value summed over its labels, from /metrics
  curl -sf "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m || index($1, m "{") == 1 { s += $2; found = 1 } END { if (found) printf "%d", s; else print "" }'
}
help_has() { # subcommand flag
  # (not piped into grep -q: with pipefail, grep exiting early fails the pipeline on SIGPIPE)
  local text
  text=$("$BIN" "$1" --help 2>&1 || true)
  grep -q -- "$2" <<<"$text"
}

# One nginx of ours: worker_processes 1 with no master (one process that is
# the worker), no daemon, everything in a temp dir, loopback only.
# nginx_start name port server-block
nginx_start() {
  local name=$1 port=$2 dir="$WORK/nginx-$1"
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  client_max_body_size 0;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  default_type text/plain;
  $3
}
EOF
  nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=($!)
  printf -v "${name}_PID" '%s' "$!"
  wait_port "$port"
}
# The local app: answers 200 "ok" after reading the whole request body.
# `return 200` alone runs in the rewrite phase, before nginx has read the
# body: the answer then overtakes the upload, and an nginx proxy in front
# of it closes the connection it was still uploading on, which shows up as
# 502s in the chain at 64 KiB. So `mirror` (whose precontent handler reads
# the whole body first) to an internal location, then the content phase's
# static handler finds no file, and error_page sends that to `return 200`.
nginx_app() { # name port [access-log-path]
  # (access_log inside server: "access_log off" on the http level cancels the others there)
  local log="" format=""
  [ -z "${3:-}" ] || { format="log_format bare '\$status';"; log="access_log $3 bare;"; }
  nginx_start "$1" "$2" "$format server {
    listen 127.0.0.1:$2 backlog=4096;
    $log
    client_body_buffer_size 128k;
    location / { mirror /read-body; log_not_found off; error_page 404 405 = @ok; }
    location @ok { return 200 \"ok\\n\"; }
    location = /read-body { internal; return 204; }
  }"
}
nginx_proxy() { # name port upstream-port
  nginx_start "$1" "$2" "upstream next { server 127.0.0.1:$3; keepalive 256; keepalive_requests 10000000; }
  server {
    listen 127.0.0.1:$2 backlog=4096;
    location / {
      proxy_pass http://next;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_request_buffering off;
      proxy_buffering off;
    }
  }"
}

# Server and client of ours. server_start name [flags...]; client_start name
# server-port target-url state-dir [flags...] (its channel in ${name}_CHANNEL).
server_start() {
  local name=$1 data=()
  shift
  # Each server keeps its state in this run's directory: the default one is shared with (and
  # locked by) any other server of the user's, and would keep every run's channels.
  if [ "$SERVER_DATA_DIR" = 1 ] && [[ " $* " != *" --data-dir "* ]]; then data=(--data-dir "$WORK/data-$name"); fi
  start "$name" "listening" "$BIN" server --host 127.0.0.1 --port 0 --log-level error "${data[@]}" "$@"
}
client_start() {
  local name=$1 server=$2 target=$3 state=$4 pattern="A tunnel"
  shift 4
  case " $* " in *" --inspect 127.0.0.1:"*) pattern="Inspect webhooks at" ;; esac
  start "$name" "$pattern" "$BIN" client --server-url "http://127.0.0.1:$server" --target-url "$target" \
    --state-dir "$state" --log-level error "$@"
  printf -v "${name}_CHANNEL" '%s' "$(grep 'Issued Channel ID' "$WORK/$name.out" | awk '{print $4}')"
}

INSPECT=0
if help_has client --inspect; then INSPECT=1; fi
SERVER_DATA_DIR=0
if help_has server --data-dir; then SERVER_DATA_DIR=1; fi
INSPECT_OFF=()
[ "$INSPECT" = 0 ] || INSPECT_OFF=(--inspect off)

# wrk against a URL: sets W_RPS W_P50 W_P99 W_REQUESTS W_BAD (non-2xx + socket errors).
run_wrk() { # url size concurrency
  local threads=2 out bench non2xx errors
  [ "$3" -ge 2 ] || threads=1
  out=$(BODY_SIZE=$2 wrk -t "$threads" -c "$3" -d "$DURATION" -s bench/post.lua "$1" 2>&1) || true
  W_RPS=$(echo "$out" | awk '/Requests\/sec/ {printf "%d", $2}')
  W_REQUESTS=$(echo "$out" | awk '/requests in/ {print $1}')
  bench=$(echo "$out" | grep '^BENCH' || true)
  # wrk's own count: response() in post.lua runs in each thread's Lua state, done() in another.
  non2xx=$(echo "$out" | awk '/Non-2xx or 3xx responses:/ {print $5}')
  errors=$(echo "$bench" | sed -n 's/.*errors=\([0-9]*\).*/\1/p')
  W_P50=$(echo "$bench" | sed -n 's/.*p50=\([0-9.]*\).*/\1/p')
  W_P99=$(echo "$bench" | sed -n 's/.*p99=\([0-9.]*\).*/\1/p')
  if [ -z "$W_RPS" ] || [ -z "$bench" ]; then
    fail "wrk gave no result for $1: $(echo "$out" | tail -3)"
    W_RPS=0 W_P50=0 W_P99=0 W_REQUESTS=0 W_BAD=1
    return
  fi
  W_BAD=$((${non2xx:-0} + ${errors:-0}))
  [ "$W_BAD" = 0 ] || fail "$1 c=$3 $2 B: ${non2xx:-0} non-2xx, ${errors:-0} socket errors"
}
# CPU time (user + system, clock ticks) of processes, from /proc/PID/stat.
ticks() {
  local total=0 pid
  for pid in "$@"; do total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat"))); done
  echo "$total"
}
HZ=$(getconf CLK_TCK)
declare -A CPU=() # "size c column" -> CPU microseconds per request of the relay's processes
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

mkdir -p "$WORK/results"
RESULTS="$WORK/results/points.tsv"
: >"$RESULTS"

load_points() {
  local app_port chain1 chain2 server
  app_port=$(free_port)
  nginx_app app "$app_port"
  chain2=$(free_port)
  nginx_proxy proxy2 "$chain2" "$app_port"
  chain1=$(free_port)
  nginx_proxy proxy1 "$chain1" "$chain2"
  server_start server
  server=$(port_of server)
  client_start tunnel_off "$server" "http://127.0.0.1:$app_port" "$WORK/state-off" "${INSPECT_OFF[@]}"
  local columns=(direct chain off)
  # The relay's processes per column, whose CPU time per request is reported.
  local -A relay=([chain]="$proxy1_PID $proxy2_PID" [off]="$server_PID $tunnel_off_PID")
  local -A url=(
    [direct]="http://127.0.0.1:$app_port/bench"
    [chain]="http://127.0.0.1:$chain1/bench"
    [off]="http://127.0.0.1:$server/webhook/$tunnel_off_CHANNEL/bench"
  )
  local inspect_port=""
  if [ "$INSPECT" = 1 ]; then
    inspect_port=$(free_port)
    client_start tunnel_on "$server" "http://127.0.0.1:$app_port" "$WORK/state-on" --inspect "127.0.0.1:$inspect_port"
    columns+=(on)
    relay[on]="$server_PID $tunnel_on_PID"
    url[on]="http://127.0.0.1:$server/webhook/$tunnel_on_CHANNEL/bench"
  fi
  local name
  for name in "${columns[@]}"; do
    curl -sf -o /dev/null -X POST --data-binary warmup "${url[$name]}" || fail "$name: a first POST to ${url[$name]} failed"
  done
  echo "load points: $DURATION each, wrk -t2 (-t1 at c=1), local app nginx (reads the body, answers 200)"
  local size c
  for size in $SIZES; do
    for c in $CONCURRENCY; do
      local line="$size $c"
      for name in "${columns[@]}"; do
        local pids=() before=0 cpu="-"
        read -r -a pids <<<"${relay[$name]:-}"
        [ "${#pids[@]}" = 0 ] || before=$(ticks "${pids[@]}")
        run_wrk "${url[$name]}" "$size" "$c"
        if [ "${#pids[@]}" != 0 ] && [ "${W_REQUESTS:-0}" -gt 0 ]; then
          cpu=$(awk -v t=$(($(ticks "${pids[@]}") - before)) -v hz="$HZ" -v n="$W_REQUESTS" 'BEGIN { printf "%.0f", t / hz * 1e6 / n }')
        fi
        CPU["$size $c $name"]=$cpu
        printf '  %-6s %-4s %-7s %8s req/s  p50 %7s ms  p99 %8s ms  %s requests, %s failed, relay CPU %s us/request\n' \
          "$((size / 1024))KiB" "c=$c" "$name" "$W_RPS" "$W_P50" "$W_P99" "$W_REQUESTS" "$W_BAD" "$cpu"
        line="$line $name $W_RPS $W_P50 $W_P99 $W_BAD"
      done
      echo "$line" >>"$RESULTS"
    done
  done
  if [ -n "$inspect_port" ]; then
    local seen
    seen=$(curl -sf "http://127.0.0.1:$inspect_port/api/webhooks" | python3 -c 'import json, sys
d = json.load(sys.stdin)
items = d if isinstance(d, list) else next((v for v in d.values() if isinstance(v, list)), [])
print(len(items))' 2>/dev/null || echo "")
    if [ -n "$seen" ] && [ "$seen" -gt 0 ]; then
      echo "  inspector on: GET /api/webhooks lists $seen webhooks"
    else
      fail "the inspector's /api/webhooks listed no webhooks after the load points"
    fi
  else
    echo "  (no tunnel-on column: this binary's client has no --inspect)"
  fi
  stop tunnel_off
  [ "$INSPECT" = 0 ] || stop tunnel_on
  stop server
  stop proxy1
  stop proxy2
  stop app
}

print_table() {
  echo
  echo "| point | direct | two-nginx chain | tunnel, inspect off | tunnel, inspect on | off / chain | on / chain | on / off | failed |"
  echo "|---|---|---|---|---|---|---|---|---|"
  local size c n1 d dp50 dp99 db n2 ch cp50 cp99 cb n3 o op50 op99 ob n4 on onp50 onp99 onb
  while read -r size c n1 d dp50 dp99 db n2 ch cp50 cp99 cb n3 o op50 op99 ob n4 on onp50 onp99 onb; do
    : "$n1" "$n2" "$n3" "$n4" "$dp99" "$cp99" "$op99" "$onp99"
    local cell_on="-" on_chain="-" on_off="-"
    if [ -n "${on:-}" ]; then
      cell_on="$on ($onp50 ms)"
      on_chain=$(ratio "$on" "$ch")
      on_off=$(ratio "$on" "$o")
    fi
    echo "| $((size / 1024)) KiB c=$c rps (p50) | $d ($dp50 ms) | $ch ($cp50 ms) | $o ($op50 ms) | $cell_on | $(ratio "$o" "$ch") | $on_chain | $on_off | $((db + cb + ob + ${onb:-0})) |"
  done <"$RESULTS"
  echo
  echo "CPU per request of the relay's processes (user + system, from /proc/PID/stat over the wrk run):"
  echo "| point | chain: both nginx proxies | tunnel off: server + client | tunnel on: server + client | off / chain |"
  echo "|---|---|---|---|---|"
  while read -r size c _; do
    local k="$size $c"
    echo "| $((size / 1024)) KiB c=$c | ${CPU[$k chain]:-} µs | ${CPU[$k off]:-} µs | ${CPU[$k on]:--} µs | $(ratio "${CPU[$k off]:-0}" "${CPU[$k chain]:-0}") |"
  done <"$RESULTS"
}

# Large bodies: a fresh server and client per size and column, so each VmHWM
# is that one transfer's peak (plus start-up); curl streams a sparse file.
large_bodies() {
  local app_port
  [ -n "$LARGE" ] || return 0
  start bodyapp "listening" python3 bench/body-app.py --host 127.0.0.1 --port 0
  app_port=$(port_of bodyapp)
  echo
  echo "large bodies: POST through bench/body-app.py (reads all, answers with the byte count); fresh server and client per point"
  local size modes=(off)
  [ "$INSPECT" = 0 ] || modes+=(on)
  for size in $LARGE; do
    truncate -s "$size" "$WORK/large"
    # Read it once: the first read of a fresh sparse file fills the page cache
    # and took ~10x longer (0.29 s for 100 MiB, 0.03 s after), which went to
    # whichever column came first.
    cat "$WORK/large" >/dev/null
    large_post "$size" "http://127.0.0.1:$app_port/large" direct
    local mode server
    for mode in "${modes[@]}"; do
      server_start lserver --max-body-size 2GiB --request-timeout 5m
      server=$(port_of lserver)
      [ -n "${RSS_AFTER_START:-}" ] || RSS_AFTER_START=$(kib "$lserver_PID" VmRSS)
      local flags=("${INSPECT_OFF[@]}")
      [ "$mode" = off ] || flags=(--inspect "127.0.0.1:$(free_port)")
      client_start lclient "$server" "http://127.0.0.1:$app_port" "$WORK/state-large-$mode" --new-channel \
        --transfer-request-timeout 5m "${flags[@]}"
      large_post "$size" "http://127.0.0.1:$server/webhook/$lclient_CHANNEL/large" "tunnel, inspect $mode" \
        "$lserver_PID" "$lclient_PID"
      stop lclient
      stop lserver
    done
    rm -f "$WORK/large"
  done
  stop bodyapp
  if [ -n "${RSS_AFTER_START:-}" ]; then
    echo "server RSS just after start: $(mib "$RSS_AFTER_START") MiB ($RSS_AFTER_START KiB VmRSS at its 'listening' line)"
  fi
}
large_post() { # size url label [server-pid client-pid]
  local out code secs answer
  out=$(curl -s -o "$WORK/large.answer" -w '%{http_code} %{time_total}' -X POST -H 'Expect:' \
    -H 'Content-Type: application/octet-stream' -T "$WORK/large" "$2" || true)
  read -r code secs <<<"$out"
  answer=$(cat "$WORK/large.answer" 2>/dev/null || true)
  local memory=""
  if [ -n "${4:-}" ]; then
    memory="; VmHWM server $(mib "$(kib "$4" VmHWM)") MiB, client $(mib "$(kib "$5" VmHWM)") MiB"
  fi
  printf '  %5s MiB %-20s HTTP %s in %6ss (%s MiB/s)%s\n' "$(($1 / 1048576))" "$3" "${code:-000}" "${secs:-?}" \
    "$(awk -v s="${secs:-0}" -v n="$1" 'BEGIN { printf "%.0f", (s > 0 ? n / 1048576 / s : 0) }')" "$memory"
  if [ "$3" = "tunnel, inspect off" ]; then
    FIG[large_$1_s]=$secs
    FIG[large_$1_server]=$(mib "$(kib "$4" VmHWM)")
    FIG[large_$1_client]=$(mib "$(kib "$5" VmHWM)")
  fi
  [ "$code" = 200 ] || fail "$3: $1 bytes: HTTP ${code:-none}"
  [ "$answer" = "{\"bytes\": $1}" ] || fail "$3: the app answered '$answer', not {\"bytes\": $1}"
}

# The offline queue: ingest (client away, wrk at c=16 with 1 KiB bodies, every
# answer must be 202 and stored) and drain (the client starts; time until the
# local app has seen every stored webhook, from its access log). The drain
# rate is reported twice: from the client's start (which includes starting
# the client process and its connect) and from the first delivery the app
# saw, which is the queue's own rate.
queue_phase() { # label [server store flags...]
  local label=$1
  shift
  local app_port log="$WORK/queue-access-$RANDOM.log" limits=()
  help_has server --queue-max-webhooks && limits+=(--queue-max-webhooks 100000000)
  help_has server --queue-max-bytes && limits+=(--queue-max-bytes 64GiB)
  help_has server --queue-max-total-bytes && limits+=(--queue-max-total-bytes 64GiB)
  app_port=$(free_port)
  nginx_app qapp "$app_port" "$log"
  if ! OPTIONAL=1 server_start qserver --offline-hold "$QUEUE_HOLD" "${limits[@]}" "$@"; then
    echo "  $label: skipped, the server did not start with $*: $(grep -v '^$' "$WORK/qserver.err" | tail -1)"
    stop qserver
    stop qapp
    return
  fi
  local server
  server=$(port_of qserver)
  client_start qclient "$server" "http://127.0.0.1:$app_port" "$WORK/state-queue-$label" --new-channel \
    --when-offline queue "${INSPECT_OFF[@]}"
  local target="http://127.0.0.1:$server/webhook/$qclient_CHANNEL/queued" _
  stop qclient
  for _ in $(seq 1 200); do
    [ "$(metric "$server" wow_channels_connected)" = 0 ] && break
    sleep 0.05
  done
  local probe
  probe=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary probe "$target" || true)
  [ "$probe" = 202 ] || fail "queue ($label): a webhook for the away client got HTTP $probe, not 202"
  run_wrk "$target" 1024 16
  local stored
  stored=$(metric "$server" wow_queue_stored_total)
  printf '  %-10s ingest: %s 202/s (p50 %s ms, p99 %s ms), %s answered in %s, %s failed; wow_queue_stored_total %s\n' \
    "$label" "$W_RPS" "$W_P50" "$W_P99" "$W_REQUESTS" "$DURATION" "$W_BAD" "${stored:-?}"
  if [ -z "$stored" ] || [ "$stored" -lt $((W_REQUESTS + 1)) ]; then
    fail "queue ($label): $((W_REQUESTS + 1)) webhooks answered 202 but wow_queue_stored_total is ${stored:-missing}"
    stored=$((W_REQUESTS + 1))
  fi
  local t0 t1 tfirst="" seen=0 last=0 stalled_since
  t0=$(date +%s%N)
  client_start qclient "$server" "http://127.0.0.1:$app_port" "$WORK/state-queue-$label" \
    --when-offline queue "${INSPECT_OFF[@]}"
  # Until the app has seen them all, or 30 s without one more.
  stalled_since=$(date +%s)
  while [ $(($(date +%s) - stalled_since)) -lt 30 ]; do
    seen=$(wc -l <"$log")
    [ -n "$tfirst" ] || [ "$seen" = 0 ] || tfirst=$(date +%s%N)
    [ "$seen" -lt "$stored" ] || break
    if [ "$seen" != "$last" ]; then
      last=$seen
      stalled_since=$(date +%s)
    fi
    sleep 0.02
  done
  t1=$(date +%s%N)
  local secs first_secs
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
  first_secs=$(awk -v a="${tfirst:-$t1}" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
  printf '  %-10s drain:  %s of %s delivered to the local app %ss after the client started (%s/s); %ss from the first delivery (%s/s)\n' \
    "$label" "$seen" "$stored" "$secs" "$(awk -v n="$seen" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')" \
    "$first_secs" "$(awk -v n="$seen" -v s="$first_secs" 'BEGIN { printf "%.0f", (s > 0 ? (n - 1) / s : 0) }')"
  [ "$seen" -ge "$stored" ] || fail "queue ($label): only $seen of $stored queued webhooks reached the local app"
  stop qclient
  stop qserver
  stop qapp
}

postgres_start() { # sets PG_URL, or returns 1 with a note
  local bin
  bin=$(command -v pg_ctl || true)
  if [ -z "$bin" ]; then
    for bin in /usr/lib/postgresql/*/bin/pg_ctl; do :; done
  fi
  if [ ! -x "$bin" ]; then
    echo "  (PostgreSQL: no pg_ctl on this machine, skipped)"
    return 1
  fi
  bin=$(dirname "$bin")
  local dir port as=()
  dir=$(mktemp -d)
  chmod 755 "$dir"
  CLEANUPS+=("rm -rf '$dir'")
  if [ "$(id -u)" = 0 ]; then
    chown nobody "$dir"
    as=(runuser -u nobody --)
  fi
  port=$(free_port)
  "${as[@]}" "$bin/initdb" -D "$dir/data" -U bench --auth=trust -E UTF8 >"$WORK/pg-init.log" 2>&1 || {
    echo "  (PostgreSQL: initdb failed, skipped: $(tail -1 "$WORK/pg-init.log"))"
    return 1
  }
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >"$WORK/pg-start.log" 2>&1 || {
    echo "  (PostgreSQL: pg_ctl start failed, skipped: $(tail -1 "$dir/log"))"
    return 1
  }
  CLEANUPS=("${as[*]} '$bin/pg_ctl' -D '$dir/data' -m immediate stop >/dev/null 2>&1" "${CLEANUPS[@]}")
  PG_URL="postgres://bench@127.0.0.1:$port/postgres"
}

queue_phases() {
  echo
  if ! help_has server --data-dir || ! help_has client --when-offline; then
    echo "offline queue: skipped (this binary has no server --data-dir / client --when-offline)"
    return
  fi
  echo "offline queue: --offline-hold $QUEUE_HOLD, limits raised; wrk c=16, 1 KiB, $DURATION against an away client's channel"
  mkdir -p "$WORK/queue-data"
  queue_phase sqlite --data-dir "$WORK/queue-data"
  if [ "$POSTGRES" = 0 ]; then return; fi
  if ! help_has server --queue-url; then
    echo "  (PostgreSQL: this binary has no --queue-url, skipped)"
    return
  fi
  if postgres_start; then
    mkdir -p "$WORK/queue-data-pg"
    queue_phase postgres --data-dir "$WORK/queue-data-pg" --queue-url "$PG_URL"
  fi
}

# Server memory per idle connected client, and the server's CPU while they
# sit idle. Each point starts a fresh server; bench/idle-clients.py opens N
# clients the way the real client does (GET /new, then the WebSocket upgrade
# with the v2 subprotocol and the token), 64 at a time, answers the server's
# pings and pings it every 15 s, holds them IDLE_SETTLE seconds (35: every
# client has been through two server pings, so one that failed to answer
# would be gone), compares the server's VmRSS (/proc/PID/status) with its
# VmRSS before the first client, samples its CPU (/proc/PID/stat), and checks
# that every client is still connected and that /metrics says
# wow_channels_connected = N. The figure counts everything a client costs
# the server: its channel (from /new) and its connection.
idle_phase() {
  echo
  # N sockets in the server and N in python3: raise the open-file limit as far as
  # allowed (the hard limit only with CAP_SYS_RESOURCE); both processes inherit it.
  local hard limit
  hard=$(ulimit -Hn)
  [ "$hard" = unlimited ] && hard=$(cat /proc/sys/fs/nr_open)
  if [ "$hard" -lt 25000 ]; then ulimit -Hn 25000 2>/dev/null && hard=25000; fi
  ulimit -Sn "$hard"
  limit=$(ulimit -Sn)
  echo "idle clients: fresh server per point, settle ${IDLE_SETTLE}s, open-file limit $limit$([ "$limit" -ge 25000 ] || echo " (the hard limit here; 25000 was not allowed)")"
  printf '%-8s | %11s %11s | %10s | %8s | %9s | %13s | %s\n' clients "rss0 KiB" "rss KiB" KiB/client "cpu %" "connect s" "harness cpu s" "still connected / wow_channels_connected"
  local n out ok
  field() { echo "$out" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
  for n in $IDLE_CLIENTS; do
    if [ "$limit" -lt $((n + 1024)) ]; then
      fail "$n idle clients need an open-file limit of at least $((n + 1024)), this shell allows $limit"
      continue
    fi
    server_start idle --max-channels $((n + 1000))
    ok=1
    out=$(python3 bench/idle-clients.py --server-url "http://127.0.0.1:$(port_of idle)" --pid "$idle_PID" \
      -n "$n" --settle "$IDLE_SETTLE" --cpu-seconds "$IDLE_CPU_SECONDS" 2>"$WORK/idle-$n.err") || ok=0
    stop idle
    if [ -z "$out" ]; then
      fail "idle clients n=$n did not finish: $(tail -5 "$WORK/idle-$n.err")"
      continue
    fi
    FIG[idle_${n}_kib]=$(field per_client_kib)
    FIG[idle_${n}_connect]=$(field connect_s)
    printf '%-8s | %11s %11s | %10s | %8s | %9s | %13s | %s / %s\n' "$n" "$(field before_kib)" "$(field after_kib)" \
      "$(field per_client_kib)" "$(field cpu_pct)" "$(field connect_s)" "$(field harness_cpu_s)" "$(field connected)" "$(field metric_connected)"
    if [ "$ok" = 0 ]; then
      fail "idle clients n=$n: $(field errors) failed to connect, $(field dropped) dropped, $(field unanswered) with unanswered pings"
      grep -E 'error:|dropped:' "$WORK/idle-$n.err" | head -5 >&2 || true
    fi
  done
}

# The targets of the data-path work (docs/performance.md), against this run's
# figures for the tunnel with the inspector off; "-" where not measured.
targets() {
  check() { # label value op limit
    local verdict="-"
    if [ -n "$2" ]; then
      verdict=$(awk -v v="$2" -v l="$4" -v op="$3" 'BEGIN { ok = (op == "<=" ? v <= l : v >= l); print (ok ? "met" : "MISSED") }')
    fi
    printf '  %-52s %10s  (target %s %s)  %s\n' "$1" "${2:--}" "$3" "$4" "$verdict"
  }
  echo
  echo "targets (tunnel with the inspector off):"
  local size c n1 d dp50 dp99 db n2 ch cp50 cp99 cb n3 o op50 op99 ob rest failed=0
  while read -r size c n1 d dp50 dp99 db n2 ch cp50 cp99 cb n3 o op50 op99 ob rest; do
    : "$n1" "$n2" "$n3" "$d" "$dp50" "$dp99" "$cp50" "$cp99" "$op99" "$rest"
    check "tunnel / chain rps, $((size / 1024)) KiB c=$c" "$(ratio "$o" "$ch")" ">=" 0.50
    [ "$size $c" != "1024 1" ] || check "p50 through the tunnel, 1 KiB c=1 (ms)" "$op50" "<=" 0.30
    failed=$((failed + db + cb + ob))
  done <"$RESULTS"
  local big=104857600 huge=1073741824
  check "100 MiB through a body-reading app (s)" "${FIG[large_${big}_s]:-}" "<=" 0.15
  check "100 MiB: peak RSS of the server (MiB)" "${FIG[large_${big}_server]:-}" "<=" 48
  check "100 MiB: peak RSS of the client (MiB)" "${FIG[large_${big}_client]:-}" "<=" 48
  check "1 GiB: peak RSS of the server (MiB)" "${FIG[large_${huge}_server]:-}" "<=" 48
  check "1 GiB: peak RSS of the client (MiB)" "${FIG[large_${huge}_client]:-}" "<=" 48
  check "server KiB per idle client at 10,000" "${FIG[idle_10000_kib]:-}" "<=" 12
  check "10,000 clients connected, 64 at a time (s)" "${FIG[idle_10000_connect]:-}" "<=" 5
  check "server RSS just after start (MiB)" "$([ -z "${RSS_AFTER_START:-}" ] || mib "$RSS_AFTER_START")" "<=" 24
  check "failed requests in the load points" "$failed" "<=" 0
}

echo "binary: $BIN ($("$BIN" --version 2>/dev/null || echo '?'))   $(date -u '+%Y-%m-%d %H:%M UTC')   $(nproc) cores, load average $(cut -d" " -f1-3 /proc/loadavg)"
if [ "$IDLE_ONLY" = 1 ]; then
  idle_phase
elif [ "$QUEUE_ONLY" = 1 ]; then
  queue_phases
else
  load_points
  print_table
  large_bodies
  [ "$QUEUE" = 0 ] || queue_phases
  [ -z "$IDLE_CLIENTS" ] || idle_phase
  [ "$SMOKE" = 1 ] || targets # (a debug build says nothing about them)
fi
echo "load average at the end: $(cut -d" " -f1-3 /proc/loadavg)"
if [ "$FAILED" != 0 ]; then
  echo "the benchmark saw failed requests or phases (lines with !! above)" >&2
  exit 1
fi
