#!/usr/bin/env bash
# Soak test: one server, many channels and clients, mixed body sizes, clients
# and local apps restarted at random; every webhook is accounted for.
#
#   bench/soak.sh                 10 minutes against the release build (build it
#                                 first: swift build -c release --product webhook-over-websocket)
#   bench/soak.sh --smoke         ~35 s with 3 channels, for CI
#   DURATION=120 bench/soak.sh    seconds of load (default 600; 24 with --smoke)
#
# Environment: BIN (the binary), DURATION, CHANNELS (default 8; 3 with
# --smoke), SENDERS (sender threads per channel, default 2), CHAOS_INTERVAL
# (mean seconds between two restarts, default 3; 1.5 with --smoke),
# MEM_SLACK_MIB (default 16), FD_SLACK (default 8), SEED (repeat a run's
# random choices), SOAK_KEEP=1 (keep the work dir with every process's output).
#
# The driver, bench/soak.py (Python 3 standard library only), starts the
# server, and per channel a local app (a Python HTTP server on a fixed port:
# records the X-Soak-Id of every request it receives and answers 200 with the
# body echoed and X-Soak-App: <channel>) and a client (its own --state-dir).
# SENDERS threads per channel post webhooks to /webhook/<id>/soak/<soak id>
# with a unique id and a random body: mostly ~1 KiB, some ~64 KiB, a few
# ~1 MiB, some empty; fresh connections and keep-alive mixed. A chaos thread
# restarts, every few seconds, one channel's client (SIGTERM or SIGKILL, then
# the same --state-dir again: it must come back on the same channel) or its
# app (stopped with its connections cut, started again on the same port).
# After a warm-up (20% of the run, 5-60 s) and at the end, a quiet phase (no
# load, no restarts, every client connected, nothing in flight per /metrics)
# samples the server's VmRSS and open descriptors; VmRSS, VmHWM and
# descriptors are also printed every 10 s.
#
# Queue mode (the clients' default --when-offline): a fourth chaos kind keeps a
# client away for 4-10 s, longer than the server's --offline-hold (2 s), so
# webhooks are queued and answered 202 {"id": ...}. Each must name its delivery
# id (body and X-Webhook-Delivery-Id) and reach its app whole once the client is
# back (the quiet phases also wait for wow_queue_depth to reach 0). A queued
# webhook that reaches its app twice (a client restart hit its delivery after the
# app answered: at least once) is counted and reported, not failed.
#
# It fails (exit 1) when a 200 answer is not the sent body byte for byte or
# names another app or id (answered with another's response); an id reached
# an app twice (duplicate) or the wrong app or path; a 200-answered webhook
# never reached its app whole (lost); a webhook got no HTTP answer (the
# connection closed before one, or nothing within 60 s); a non-200 is not
# 202/502/503/504, a 202-answered webhook never reached its app, or came while its channel had no restart going on; a client
# came back on another channel; /metrics in a quiet phase still shows a
# webhook in flight or a client missing; the server's VmRSS at the end exceeds the post-warm-up sample by
# more than MEM_SLACK_MIB, or its descriptors by more than FD_SLACK.
#
# Expected around restarts, so counted, not failed: 502 (app down), 503
# (client away), 504; answers cut mid-body (the head was out when the client
# died: the sender sees the connection close before the body ends); and
# webhooks an app received whose sender got a non-200 or a cut answer: the
# app had the request, but the client was killed or the app cut before the
# answer got back, so the sender sees a failure although the app acted. The
# sender retries and the app must tolerate the redelivery: at-least-once
# across such faults, as for any webhook.
set -euo pipefail
cd "$(dirname "$0")/.."

SMOKE=0
for arg in "$@"; do
  case "$arg" in
    --smoke) SMOKE=1 ;;
    *) echo "unknown argument: $arg" >&2; exit 64 ;;
  esac
done
BIN=${BIN:-.build/release/webhook-over-websocket}
if [ "$SMOKE" = 1 ]; then
  DURATION=${DURATION:-24}; CHANNELS=${CHANNELS:-3}; CHAOS_INTERVAL=${CHAOS_INTERVAL:-1.5}
fi
export BIN DURATION=${DURATION:-600} CHANNELS=${CHANNELS:-8} CHAOS_INTERVAL=${CHAOS_INTERVAL:-3}
[ -x "$BIN" ] || { echo "no binary at $BIN: build it first (swift build -c release --product webhook-over-websocket)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is missing" >&2; exit 1; }
[ -d /proc/self/fd ] || { echo "needs Linux /proc for the memory and descriptor samples" >&2; exit 1; }

exec python3 bench/soak.py
