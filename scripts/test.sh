#!/usr/bin/env bash
# The project's test command (README): runs every test under tests/ with real processes and
# sockets, then prints one plain summary line: `N passed, N failed, N skipped`.
# Extra arguments go to `deno test` (a filter, a single file).
set -uo pipefail
cd "$(dirname "$0")/.."
deno=node_modules/.bin/deno
[ -x "$deno" ] || { echo "deno not found: run 'npm ci' first" >&2; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
out=.test-out
mkdir -p "$out"; junit="$out/junit-$$.xml"
args=("$@"); [ ${#args[@]} -gt 0 ] || args=(tests/)
"$deno" test --allow-all --no-prompt --junit-path="$junit" "${args[@]}"
rc=$?
node -e '
const xml = require("fs").readFileSync(process.argv[1], "utf8");
let passed = 0, failed = 0, skipped = 0;
for (const m of xml.matchAll(/<testcase\b[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)) {
  const body = m[2] ?? "";
  if (/<(failure|error)\b/.test(body)) failed++;
  else if (/<skipped\b/.test(body)) skipped++;
  else passed++;
}
if (passed + failed + skipped === 0 && process.argv[2] !== "0") failed = 1;
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
' "$junit" "$rc" 2>/dev/null || echo "0 passed, 1 failed, 0 skipped"
exit $rc
