#!/usr/bin/env bash
# Builds dist/: apprun as JavaScript, for the npm package (`npm pack` runs this as `prepack`).
# Deno does not strip types from files under node_modules, so an installed apprun runs these:
# the CLI (dist/cli/main.js), the worker's preload (dist/runtime/worker/entry.js) and the
# library (dist/mod.js, types in dist/mod.d.ts) share their chunks, so an app's
# `import … from "apprun"` and the worker are the same module instances. A checkout runs the
# TypeScript sources and never needs this.
set -euo pipefail
cd "$(dirname "$0")/.."
deno=node_modules/.bin/deno
[ -x "$deno" ] || { echo "build: run 'npm ci' first" >&2; exit 1; }
rm -rf dist
"$deno" bundle --quiet --platform deno --code-splitting --declaration --outdir dist \
  cli/main.ts runtime/worker/entry.ts runtime/worker/loop_entry.ts mod.ts
echo "build: dist/ ($(du -sh dist | cut -f1))"
