#!/usr/bin/env bash
# Creates the Python venv with silt's peers (used by interop tests and benches).
# Idempotent: does nothing when the venv already has the pinned set.
set -euo pipefail
VENV="${SILT_VENV:-$HOME/.cache/silt-venv}"
STAMP="$VENV/.silt-requirements"
REQ="$(cd "$(dirname "$0")" && pwd)/requirements-peers.txt"
if [ -f "$STAMP" ] && cmp -s "$STAMP" "$REQ"; then
  echo "python peers: up to date in $VENV" >&2
  exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQ"
cp "$REQ" "$STAMP"
echo "python peers: installed into $VENV" >&2
