/**
 * Issue 16, item 2: the supervisor never outlives, unnoticed, the process that started it.
 * SIGKILL the shell that started `apprun serve` (its parent: PR_SET_PDEATHSIG), the outer of
 * two (an ancestor in its process group, as npm is above npx's `sh -c`), or `npx` itself: the
 * supervisor stops, its worker with it, and the port is closed. Real shells, real npx.
 */
import assert from "node:assert/strict";
import { APPRUN, isAlive, ROOT, spawn } from "../_proc.ts";
import { waitUntil } from "../_poll.ts";
import { APP, appDir, ask, RawClient, serveSupervised } from "./_supervised.ts";

/** SIGKILLs `starter`, then waits for the supervisor and its worker to be gone. */
async function killStarterAndWait(starterPid: number, supervisorPid: number, workerPid: number) {
  Deno.kill(starterPid, "SIGKILL");
  try {
    await waitUntil(
      () => !isAlive(supervisorPid) && !isAlive(workerPid) || undefined,
      "the supervisor and its worker to stop",
      { timeoutMs: 10_000, everyMs: 50 },
    );
  } catch (err) {
    // Left running, they would hold the test's output pipes open: end them, then fail.
    for (const pid of [supervisorPid, workerPid]) if (isAlive(pid)) Deno.kill(pid, "SIGKILL");
    throw err;
  }
}

const sh = (script: string) => ["/bin/sh", "-c", script];
// `; true` keeps each shell from exec'ing its last command: it stays the parent, as npx's does.
const SERVE = `'${APPRUN}' serve "$0" --port 0 --host 127.0.0.1; true`;

for (
  const [name, cmd] of [
    ["the shell that started it (its parent)", sh(SERVE)],
    [
      "the outer shell of two (an ancestor in its process group)",
      sh(`/bin/sh -c '${SERVE.replaceAll("'", "")}' "$0"; true`),
    ],
  ] as const
) {
  Deno.test(`serve: SIGKILL to ${name} stops the supervisor and its worker`, async () => {
    await using dir = await appDir({ "app.ts": APP, "version.ts": `export const VERSION = "v";` });
    const proc = spawn(cmd[0], [...cmd.slice(1), `${dir.path}/app.ts`], { env: dir.env });
    await using _ = proc;
    const port = Number((await proc.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/))[1]);
    const supervisor = Number((await proc.waitFor(/supervisor pid (\d+)/))[1]);
    using c = await RawClient.connect(port);
    const worker = Number(await ask(c));
    assert.notEqual(supervisor, proc.pid, "a shell stands between");
    await killStarterAndWait(proc.pid, supervisor, worker);
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port }), "the port is closed");
  });
}

Deno.test("serve: npx apprun serve, then npm SIGKILLed: the supervisor and worker stop", async () => {
  await using dir = await appDir({ "app.ts": APP, "version.ts": `export const VERSION = "v";` });
  // npx runs the checkout's own bin (npm exec links the project), through `sh -c`.
  await using s = await serveSupervised(dir, "app.ts", [], ["npx", "--no-install", "apprun"]);
  using c = await RawClient.connect(s.port);
  const worker = Number(await ask(c));
  assert.notEqual(s.pid, s.proc.pid, "npm is not the supervisor");
  assert.match(s.proc.log, /reload with `npx apprun reload --name app`/, "npx said again");
  await killStarterAndWait(s.proc.pid, s.pid, worker);
  assert.match(s.proc.log, /\(pid \d+\), which started the supervisor, is gone: stopping/);
});

Deno.test("serve: README's npx apprun runs the checkout (bin/apprun, not a missing dist/)", async () => {
  const out = await new Deno.Command("npx", {
    args: ["--no-install", "apprun", "--version"],
    cwd: ROOT,
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.match(text, /^\d+\.\d+\.\d+/);
});
