#!/usr/bin/env bash
# Installs what the console's browser test needs (integration-tests/tests/it/console.rs):
# Debian's `chromium` (apt-get, only when /usr/bin/chromium is missing) and
# `playwright-core` from the npm registry into a cache dir outside the clone
# ($SILT_UI_TOOLS, default ~/.cache/silt-ui-tools). Idempotent, no stdin.
# Playwright's own browser download (`npx playwright install`) is never used:
# the test launches /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="${SILT_UI_TOOLS:-$HOME/.cache/silt-ui-tools}"
PLAYWRIGHT_VERSION="$(sed -n 's/.*"playwright-core": *"\([^"]*\)".*/\1/p' integration-tests/console/package.json)"

if [ ! -x /usr/bin/chromium ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium is missing and apt-get is not available: install Chromium at /usr/bin/chromium" >&2
    exit 1
  fi
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq </dev/null
  $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core </dev/null >/dev/null
fi
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo unknown)" >&2

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "node/npm are missing and apt-get is not available: install Node.js 18 or later" >&2
    exit 1
  fi
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq </dev/null
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm </dev/null >/dev/null
fi

installed="$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$TOOLS/node_modules/playwright-core/package.json" 2>/dev/null | head -1 || true)"
if [ "$installed" != "$PLAYWRIGHT_VERSION" ]; then
  mkdir -p "$TOOLS"
  # playwright-core ships no browser and downloads none on install.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$TOOLS" --no-audit --no-fund --no-save \
    "playwright-core@$PLAYWRIGHT_VERSION" </dev/null >&2
fi
echo "playwright-core: $PLAYWRIGHT_VERSION in $TOOLS" >&2
