#!/usr/bin/env bash
# The README's main command: a demo server with a live handoff (see scripts/demo.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x node_modules/.bin/deno ] || npm ci --no-audit --no-fund
exec node_modules/.bin/deno run --allow-all --quiet scripts/demo.ts
