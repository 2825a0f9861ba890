#!/usr/bin/env bash
# Installs psql (Debian's postgresql-client) for the Postgres wire tests
# (integration-tests/tests/it/pg_wire.rs). Idempotent: does nothing when
# psql is already on PATH.
set -euo pipefail
if command -v psql >/dev/null 2>&1; then
  echo "psql: $(psql --version)" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "psql is missing and apt-get is not available: install the PostgreSQL client (psql)" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq postgresql-client >/dev/null
echo "psql: installed $(psql --version)" >&2
