/**
 * Issue 16, item 5: `apprun serve --watch` watches the app's module graph (the app and what
 * it imports, outside node_modules), not its directory: a log written line by line beside
 * the app restarts nothing; a typo restarts nothing and costs no connection (the new code is
 * checked first), and the fix that follows is served on the same kept connection, also when
 * it is saved while the typo is still being checked; an import added by a reload is watched
 * from then on. Real editor-like writes, a real kept TCP connection.
 */
import assert from "node:assert/strict";
import { sleep, waitUntil } from "../_poll.ts";
import { APP, appDir, ask, RawClient, serveSupervised, type Supervised } from "./_supervised.ts";

const FILES = { "app.ts": APP, "version.ts": `export const VERSION = "v1";\n` };

/** `--watch`, once the module graph (app.ts, version.ts, …) is watched. */
async function serveWatching(dir: { path: string; env: Record<string, string> }, files = 2) {
  const s = await serveSupervised({ ...dir, env: { ...dir.env, APPRUN_LOG: "debug" } }, "app.ts", [
    "--watch",
  ]);
  await waitUntil(
    () =>
      new RegExp(`watch: ${files} file\\(s\\) of the module graph`).test(s.proc.log) || undefined,
    "the module graph",
    { timeoutMs: 20_000, everyMs: 50 },
  );
  return s;
}

/** Waits until the kept connection is answered by another pid; returns it. */
function nextPid(kept: RawClient, pid: string): Promise<string> {
  return waitUntil(
    async () => {
      const now = await ask(kept);
      return now !== pid ? now : undefined;
    },
    `a worker other than ${pid} on the kept connection`,
    { timeoutMs: 20_000, everyMs: 50 },
  );
}

const workersStarted = (s: Supervised) =>
  (s.proc.log.match(/generation \d+: started /g) ?? []).length;

Deno.test("serve --watch: a log file written 50 times beside the app restarts nothing", async () => {
  await using dir = await appDir(FILES);
  await using s = await serveWatching(dir);
  using kept = await RawClient.connect(s.port);
  const pid = await ask(kept);
  for (let i = 0; i < 50; i++) {
    await Deno.writeTextFile(`${dir.path}/app.log`, `request ${i}\n`, { append: true });
    await sleep(10);
  }
  await Deno.writeTextFile(`${dir.path}/notes.ts`, "// not imported by the app\n");
  await sleep(1000);
  assert.equal(await ask(kept), pid);
  assert.equal(workersStarted(s), 1, s.proc.log);
  assert.doesNotMatch(s.proc.log, /(restart|reload) \(/);
});

Deno.test("serve --watch: a typo restarts nothing; the fix is served on the same connection", async () => {
  await using dir = await appDir(FILES);
  await using s = await serveWatching(dir);
  using kept = await RawClient.connect(s.port);
  const first = await ask(kept);
  await Deno.writeTextFile(`${dir.path}/version.ts`, `export const VERSION = "v2" +;\n`);
  await waitUntil(
    () => /refused, generation 1 .* goes on serving/.test(s.proc.log) || undefined,
    "refusal",
    { timeoutMs: 20_000, everyMs: 50 },
  );
  assert.equal(await ask(kept), first, "the typo cost no restart and no connection");
  assert.equal(await ask(kept, "/"), "v1");
  await Deno.writeTextFile(`${dir.path}/version.ts`, `export const VERSION = "v2";\n`);
  const next = await nextPid(kept, first);
  assert.equal(await ask(kept, "/"), "v2", "the fixed version, on the kept connection");
  // Warm: the new worker serves before the supervisor is told it is the main process.
  await waitUntil(() => workersStarted(s) === 2 || undefined, "the second worker's start", {
    timeoutMs: 5000,
    everyMs: 20,
  });
  assert.equal(workersStarted(s), 2, s.proc.log);
  assert.notEqual(next, first);
});

Deno.test("serve --watch: a fix saved while the typo is being checked is what runs", async () => {
  await using dir = await appDir(FILES);
  await using s = await serveWatching(dir);
  using kept = await RawClient.connect(s.port);
  const first = await ask(kept);
  await Deno.writeTextFile(`${dir.path}/version.ts`, `export const VERSION = "v2" +;\n`);
  // Past the debounce (200 ms), inside the check of the typo (a Deno start: ~0.3 s or more).
  await sleep(300);
  await Deno.writeTextFile(`${dir.path}/version.ts`, `export const VERSION = "v3";\n`);
  await nextPid(kept, first);
  assert.equal(await ask(kept, "/"), "v3");
  await sleep(1000);
  assert.equal(await ask(kept, "/"), "v3", "no later restart brought anything else");
});

Deno.test("serve --watch: a module imported after a reload is watched from then on", async () => {
  await using dir = await appDir(FILES);
  await using s = await serveWatching(dir);
  using kept = await RawClient.connect(s.port);
  const first = await ask(kept);
  await Deno.mkdir(`${dir.path}/lib`);
  await Deno.writeTextFile(`${dir.path}/lib/name.ts`, `export const NAME = "a";\n`);
  await Deno.writeTextFile(
    `${dir.path}/version.ts`,
    `import { NAME } from "./lib/name.ts";\nexport const VERSION = "v-" + NAME;\n`,
  );
  const second = await nextPid(kept, first);
  assert.equal(await ask(kept, "/"), "v-a");
  await waitUntil(
    () => /watch: 3 file\(s\) of the module graph/.test(s.proc.log) || undefined,
    "graph",
    { timeoutMs: 20_000, everyMs: 50 },
  );
  await Deno.writeTextFile(`${dir.path}/lib/name.ts`, `export const NAME = "b";\n`);
  await nextPid(kept, second);
  assert.equal(await ask(kept, "/"), "v-b");
});
