#!/usr/bin/env bash
# Builds silt and serves the embedded default warehouse ./silt-data on
# 127.0.0.1:7070 (HTTP) and 127.0.0.1:7071 (Flight). Extra arguments go to
# `silt serve` (e.g. --config schemas/config.example.toml).
#
#   SILT_PROFILE  cargo profile (default `serve`: release at opt-level 1,
#                 see Cargo.toml; a cold build took 15 min on 2 cores, about
#                 twice a debug build, and runs queries about 9x faster). `release` for production
#                 (opt-level 3; the first build takes about 40 minutes on
#                 2 cores), `dev` (or `debug`) to share the test build.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/silt-target}"
profile="${SILT_PROFILE:-serve}"
case "$profile" in
  debug | dev) profile=dev dir=debug ;;
  release) dir=release ;;
  *) dir="$profile" ;;
esac
cargo build -q --profile "$profile" -p silt
exec "$CARGO_TARGET_DIR/$dir/silt" serve --warehouse "${SILT_WAREHOUSE:-./silt-data}" "$@"
