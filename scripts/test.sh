#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, SQL logic tests and the
# integration tests that drive the real `silt` binary and the Python peers.
# Installs what it needs (Python peers from PyPI, psql, chromium and
# nats-server from Debian, playwright-core from npm) on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/silt-target}"
export SILT_VENV="${SILT_VENV:-$HOME/.cache/silt-venv}"
export SILT_PYTHON="${SILT_PYTHON:-$SILT_VENV/bin/python}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n== %s\n' "$*" >&2; }

step "toolchain components"
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "python peers ($SILT_VENV)"
bash scripts/setup-python.sh

step "psql (scripts/setup-pg-client.sh)"
bash scripts/setup-pg-client.sh

step "chromium + playwright-core (scripts/setup-browser.sh)"
bash scripts/setup-browser.sh </dev/null
step "message brokers (scripts/setup-brokers.sh)"
bash scripts/setup-brokers.sh

step "cargo fmt --check"
cargo fmt --all -- --check

# `cargo build -p silt` (the binary the integration tests drive) and `cargo
# test --workspace` must resolve the same dependency features, or the
# DataFusion stack is compiled twice (a dev-dependency turning on a feature
# of a shared crate does that; name the feature in the root Cargo.toml's
# feature-unification entries, as for sqllogictest's md-5/rand_core).
step "one feature set for cargo build -p silt and cargo test --workspace"
features() { cargo tree -q "$@" -f '{p}|{f}' --prefix none | sed 's/ (\*)$//' | LC_ALL=C sort -u; }
differ="$(LC_ALL=C comm -23 <(features -p silt -e normal,build) <(features --workspace -e normal,build,dev))"
if [ -n "$differ" ]; then
  echo "these dependencies get other features under cargo test --workspace (package|features of the build):" >&2
  echo "$differ" >&2
  exit 1
fi

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

# The integration tests run target/debug/silt, which `cargo test` does not
# build (it is another package's binary); with one feature set this shares
# every dependency with the test build below.
step "build the silt binary the integration tests drive"
cargo build -p silt

step "cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
# --no-fail-fast: one failing test binary must not hide the others' results.
cargo test --workspace --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# The API fuzz pass (issue 11): schemathesis against a real `silt serve`,
# one run per role, about 4 minutes; counted below as one test.
fuzz_passed=0
fuzz_failed=0
step "API fuzz pass (scripts/api-fuzz.sh)"
if bash scripts/api-fuzz.sh </dev/null; then fuzz_passed=1; else fuzz_failed=1; fi
[ "$fuzz_failed" -eq 0 ] || [ "$status" -ne 0 ] || status=1

# One closing line over every runner (unit, doc, slt, integration, API fuzz).
awk -v p="$fuzz_passed" -v f="$fuzz_failed" '
  /^test result: / { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
  /^slt: [0-9]+ passed, [0-9]+ failed/ { p += $2; f += $4 }
  END { printf "tests: %d passed, %d failed\n", p, f }
' "$log"
exit "$status"
