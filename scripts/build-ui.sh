#!/usr/bin/env bash
# Build the admin web UI (ui/) into the Python package (src/aigc_admin/web/ui_build), which serves it at /.
#
# node_modules is kept per package-lock.json under ${AIGC_CACHE_DIR:-~/.cache/aigc-admin}/ui/<lock hash> and
# ui/node_modules is a link to it: a fresh clone reuses it, and `npm ci` runs only when the lock file changed.
# Needs Node.js ≥ 20 and npm (Debian: nodejs npm; installed when missing and we are root or have sudo).
# `--test` also runs the Vitest unit tests.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${AIGC_CACHE_DIR:-$HOME/.cache/aigc-admin}/ui"
UI="$ROOT/ui"
say() { printf 'build-ui: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

if ! command -v npm >/dev/null 2>&1; then
  say "installing nodejs and npm (Debian packages)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm </dev/null >/dev/null
fi

lock_hash=$(sha256sum "$UI/package-lock.json" | cut -c1-16)
modules="$CACHE/$lock_hash/node_modules"
if [ ! -f "$modules/.aigc-complete" ]; then
  say "installing node packages (npm ci, package-lock $lock_hash)"
  rm -rf "$CACHE/$lock_hash" "$UI/node_modules"
  mkdir -p "$CACHE/$lock_hash"
  (cd "$UI" && npm ci --no-audit --no-fund --loglevel=error)
  mv "$UI/node_modules" "$modules"
  touch "$modules/.aigc-complete"
  # older lock files' packages are dropped
  find "$CACHE" -mindepth 1 -maxdepth 1 -type d ! -name "$lock_hash" -exec rm -rf {} +
fi
if [ "$(readlink "$UI/node_modules" 2>/dev/null)" != "$modules" ]; then
  rm -rf "$UI/node_modules"
  ln -s "$modules" "$UI/node_modules"
fi

cd "$UI"
say "building (codegen from schema.graphql, type check, vite)"
npm run --silent build >&2
if [ "${1:-}" = "--test" ]; then
  say "unit tests (vitest)"
  npx vitest run >&2
fi
