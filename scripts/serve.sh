#!/usr/bin/env bash
# Builds silt (release) and serves the embedded default warehouse ./silt-data
# on 127.0.0.1:7070 (HTTP) and 127.0.0.1:7071 (Flight). Extra arguments go to
# `silt serve` (e.g. --config schemas/config.example.toml). The first build
# takes about 25 minutes on 2 cores; SILT_PROFILE=debug builds in ~7.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/silt-target}"
profile="${SILT_PROFILE:-release}"
if [ "$profile" = release ]; then
  cargo build -q --release -p silt
else
  cargo build -q -p silt
fi
exec "$CARGO_TARGET_DIR/$profile/silt" serve --warehouse "${SILT_WAREHOUSE:-./silt-data}" "$@"
