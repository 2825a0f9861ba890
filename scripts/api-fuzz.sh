#!/usr/bin/env bash
# Bounded API fuzz pass (issue 11): schemathesis against the real `silt serve`
# and its own /openapi.json, once with a token of each role (reader, writer,
# operator), checking for 5xx, answers that do not match the document (status,
# content type, body schema), auth that is not enforced, a dead or stuck
# server, panics in its log, and that SIGTERM stops it. Run by scripts/test.sh
# (CI); about 4 minutes with the defaults. Needs no standard input.
#
# Environment (all optional):
#   API_FUZZ_SECONDS  time budget of each role's run (default 60)
#   API_FUZZ_SEED     schemathesis seed (default fixed; CI is repeatable)
#   API_FUZZ_ROLES    e.g. "reader" to run one role
#   SILT_BIN          the binary (default $CARGO_TARGET_DIR/debug/silt, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/silt-target}"
export SILT_VENV="${SILT_VENV:-$HOME/.cache/silt-venv}"
python="${SILT_PYTHON:-$SILT_VENV/bin/python}"
silt="${SILT_BIN:-$CARGO_TARGET_DIR/debug/silt}"

if [ -z "${SILT_BIN:-}" ]; then
  cargo build -q -p silt
fi
# schemathesis is one of the pinned peers (scripts/requirements-peers.txt).
bash scripts/setup-python.sh
exec "$python" integration-tests/python/api_fuzz.py --silt "$silt" </dev/null
