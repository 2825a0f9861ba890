#!/usr/bin/env bash
# Installs psql (Debian's postgresql-client) for the Postgres wire tests
# (integration-tests/tests/it/pg_wire.rs), and the openssl command line
# tool they make a self-signed TLS certificate with. Idempotent: does
# nothing when both are already on PATH.
set -euo pipefail
if command -v psql >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1; then
  echo "psql: $(psql --version)" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "psql or openssl is missing and apt-get is not available: install the PostgreSQL client (psql) and openssl" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq postgresql-client openssl >/dev/null
echo "psql: installed $(psql --version); $(openssl version)" >&2
