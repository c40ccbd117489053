/**
 * What a user runs holds no test-only fault hook (issue 11, item 14): no source under mod.ts,
 * runtime/, cli/, units/ or bin/ reads an `APPRUN_TEST_*` variable. The faults the handoff and
 * upgrade tests need are made from outside — an app that crashes in its own hook, a bundle an
 * old process of another make leaves (tests/fixtures/planter.ts), a frozen manager, a driver
 * that runs the swap's steps itself (tests/upgrade/swap_driver.ts) — never by a switch in the
 * shipped code.
 */
import assert from "node:assert/strict";
import { ROOT } from "./_proc.ts";

async function* files(path: string): AsyncGenerator<string> {
  const info = await Deno.stat(path);
  if (!info.isDirectory) return yield path;
  for await (const e of Deno.readDir(path)) yield* files(`${path}/${e.name}`);
}

Deno.test("shipped code reads no APPRUN_TEST_* variable", async () => {
  const found: string[] = [];
  for (const top of ["mod.ts", "runtime", "cli", "units", "bin"]) {
    for await (const path of files(`${ROOT}/${top}`)) {
      const text = await Deno.readTextFile(path);
      text.split("\n").forEach((line, i) => {
        if (line.includes("APPRUN_TEST_")) found.push(`${path.slice(ROOT.length + 1)}:${i + 1}`);
      });
    }
  }
  assert.deepEqual(found, [], "test hooks in what a user runs");
});
