#!/usr/bin/env bash
# Builds silt in release (its own target dir, so it never holds the debug
# build's lock) and runs benches/hardening.py against it.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${SILT_BENCH_TARGET_DIR:-$HOME/.cache/silt-bench-target}"
cargo build --release -p silt --target-dir "$target"
python3 benches/hardening.py "$target/release/silt"
