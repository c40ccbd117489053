/**
 * The upgrade's safety nets, with real processes: one upgrade at a time (a second one is
 * refused at once; a killed upgrade's lock dies with it), and an upgrade SIGKILLed at every
 * step of the swap — and at random moments while copying and checking a 32 MiB NEW — leaves
 * BIN the old or the new complete file, with NAME.prev complete, and the next upgrade cleans
 * up after it. A kill at a given step is a kill of swap_driver.ts, which runs the swap's steps
 * (runtime/upgrade/swap.ts, under the upgrade lock) itself and stops after the one asked for;
 * the random kills, the refusals and the clean-ups are real `apprun upgrade` runs.
 */
import assert from "node:assert/strict";
import { APPRUN, DENO, spawn } from "../_proc.ts";
import { sha256Of } from "../../runtime/upgrade/mod.ts";
import { sleep } from "../_poll.ts";
import { apprun, installAndServe, privateHome, UPGRADE_FIXTURES, versionOf } from "./_util.ts";

Deno.test("upgrade: two at once → exactly one refused; a killed upgrade's lock dies with it", async () => {
  await using h = await privateHome();
  await using app = await installAndServe("v1.ts", "lock", h.env);
  // The slow health check holds the winner's lock for a second.
  const args = [
    "upgrade",
    `${UPGRADE_FIXTURES}/v2.ts`,
    "--name",
    "lock",
    "--user",
    "--health",
    `http://127.0.0.1:${app.port}/health?delay=1000`,
  ];
  const both = await Promise.all([apprun(args, h.env), apprun(args, h.env)]);
  const codes = both.map((r) => r.code).sort();
  assert.deepEqual(codes, [0, 1], both.map((r) => r.stdout + r.stderr).join("\n---\n"));
  const refused = both.find((r) => r.code === 1)!;
  assert.equal(
    refused.stderr.trim(),
    `apprun: another upgrade of lock is running (${app.bin}.lock is locked)`,
  );
  assert.doesNotMatch(refused.stdout, /swapped/, "the refused one touched nothing");
  assert.equal(await versionOf(app.port), "v2");

  // Hold the lock (paused mid-swap), be refused, SIGKILL the holder: the lock is free.
  const held = swapDriver(app.bin, "lock", `${UPGRADE_FIXTURES}/v1.ts`, "staged", h.env);
  await held.waitFor(/paused at staged/, 60_000);
  const second = await apprun(
    ["upgrade", `${UPGRADE_FIXTURES}/v1.ts`, "--name", "lock", "--user"],
    h.env,
  );
  assert.equal(second.code, 1);
  assert.match(second.stderr, /another upgrade of lock is running/);
  held.kill("SIGKILL");
  await held.wait();
  const third = await apprun(
    ["upgrade", `${UPGRADE_FIXTURES}/v1.ts`, "--name", "lock", "--user"],
    h.env,
  );
  assert.equal(third.code, 0, third.stdout + third.stderr);
  assert.match(third.stdout, /removed what an interrupted upgrade left: \.lock\.new-/);
  assert.equal(await versionOf(app.port), "v1");
});

/** The swap's steps run by swap_driver.ts on `bin`, stopping after `step` until killed. */
function swapDriver(
  bin: string,
  name: string,
  newPath: string,
  step: string,
  env: Record<string, string>,
) {
  return spawn(DENO, ["run", "-A", "--quiet", DRIVER, bin, name, newPath, step], { env });
}

const DRIVER = new URL("./swap_driver.ts", import.meta.url).pathname;

/** A NEW of `mib` MiB that runs the artifact of `handler` (sh never reads past `exec`). */
async function bigNew(path: string, handler: string, mib: number, env: Record<string, string>) {
  const artifact = `${path}.artifact`;
  const built = await apprun(["compile", handler, "-o", artifact, "--format", "apprun"], env);
  assert.equal(built.code, 0, built.stderr);
  const line = `# ${"x".repeat(1020)}\n`;
  const pad = line.repeat(Math.ceil((mib << 20) / line.length));
  await Deno.writeTextFile(path, `#!/bin/sh\nexec '${artifact}' "$@"\n${pad}`, { mode: 0o755 });
  return { path, sha: await sha256Of(path) };
}

Deno.test("upgrade: SIGKILLed at every step and at random, BIN is always a complete file", async () => {
  await using h = await privateHome();
  await using app = await installAndServe("v1.ts", "atomic", h.env);
  const dir = app.bin.slice(0, app.bin.lastIndexOf("/"));
  const news = [
    await bigNew(`${h.home}/big-a`, `${UPGRADE_FIXTURES}/v2.ts`, 32, h.env),
    await bigNew(`${h.home}/big-b`, `${UPGRADE_FIXTURES}/v1.ts`, 32, h.env),
  ];
  const known = new Set([await sha256Of(app.bin), ...news.map((n) => n.sha)]);
  let round = 0;
  /** Runs an upgrade and SIGKILLs it at `step`, or `afterMs` after it began copying NEW. */
  async function killed(at: { step: string } | { afterMs: number }) {
    const target = news[round++ % 2];
    const before = await sha256Of(app.bin);
    const p = "step" in at
      ? swapDriver(app.bin, "atomic", target.path, at.step, h.env)
      : spawn(APPRUN, ["upgrade", target.path, "--name", "atomic", "--user"], { env: h.env });
    if ("step" in at) await p.waitFor(new RegExp(`paused at ${at.step}`), 60_000);
    else {
      await p.waitFor(/copying NEW/, 120_000);
      await sleep(at.afterMs); // a kill at a random moment of the copy: the point of the test
    }
    p.kill("SIGKILL");
    await p.wait();
    const after = await sha256Of(app.bin);
    const label = "step" in at ? at.step : `copying + ${at.afterMs} ms`;
    assert.ok(after === before || after === target.sha, `${label}: BIN is neither old nor new`);
    assert.ok(known.has(await sha256Of(`${app.bin}.prev`).catch(() => before)), `${label}: .prev`);
    return { before, after, target, label };
  }
  const temps = () =>
    [...Deno.readDirSync(dir)].filter((e) => e.name.startsWith(".")).map((e) => ({
      name: e.name,
      size: Deno.statSync(`${dir}/${e.name}`).size,
    }));
  for (const step of ["staged-partial", "staged", "kept-previous"]) {
    const r = await killed({ step });
    assert.equal(r.after, r.before, `${r.label}: BIN not yet replaced`);
    const partial = temps().find((t) => t.name.startsWith(".atomic.new-"));
    assert.ok(partial, `${step}: the unfinished copy is left beside BIN`);
    if (step === "staged-partial") {
      const full = Deno.statSync(r.target.path).size;
      assert.ok(partial.size < full, `a partial copy (${partial.size} of ${full} bytes)`);
    }
  }
  const swapped = await killed({ step: "swapped" });
  assert.equal(swapped.after, swapped.target.sha, "swapped: BIN is the new file");
  assert.equal(await sha256Of(`${app.bin}.prev`), swapped.before, "swapped: .prev is the old");
  const outcomes: string[] = [];
  for (const afterMs of [10 + Math.random() * 40, 60 + Math.random() * 60, 150]) {
    const r = await killed({ afterMs: Math.round(afterMs) });
    outcomes.push(`${r.label}: BIN ${r.after === r.before ? "old" : "new"}`);
  }
  console.log(`  kills while copying and checking the 32 MiB NEW: ${outcomes.join(", ")}`);

  const isLeft = temps().length > 0;
  const final = await apprun(
    ["upgrade", `${UPGRADE_FIXTURES}/v2.ts`, "--name", "atomic", "--user"],
    h.env,
  );
  assert.equal(final.code, 0, final.stdout + final.stderr);
  if (isLeft) assert.match(final.stdout, /removed what an interrupted upgrade left/);
  assert.deepEqual(temps(), [], "no temp file is left");
  assert.equal(await versionOf(app.port), "v2");
});
