#!/usr/bin/env bash
# Installs the message brokers the pull-source tests start for themselves
# (integration-tests/tests/it/sources_nats.rs): Debian's nats-server
# (JetStream is built in; each test runs its own `nats-server -js -p PORT
# -sd DIR`). Idempotent: does nothing when nats-server is already there.
# Needs no standard input.
set -euo pipefail
if command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; then
  echo "nats-server: $( (command -v nats-server || echo /usr/sbin/nats-server) | head -1)" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "nats-server is missing and apt-get is not available: install nats-server (2.9 or later)" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq nats-server </dev/null >/dev/null
echo "nats-server: installed $(/usr/sbin/nats-server --version 2>/dev/null || nats-server --version)" >&2
