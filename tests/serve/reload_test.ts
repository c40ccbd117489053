/**
 * Issue 16, items 1 and 2, as a person at a terminal meets them: `apprun serve` started by hand
 * says its supervisor's pid and how to reload; `apprun reload` (by name, by control socket,
 * or with nothing when one supervisor runs) and a SIGHUP sent to the worker — the pid people
 * see — both reload, and a keep-alive client stays connected through each; a reload whose new
 * code does not load (a throw at import, a syntax error) is refused: the running worker
 * serves on, on the same connection, and `apprun reload` prints why and exits 1.
 */
import assert from "node:assert/strict";
import { isAlive } from "../_proc.ts";
import { waitUntil } from "../_poll.ts";
import { APP, appDir, apprun, ask, RawClient, serveSupervised } from "./_supervised.ts";

Deno.test("serve: the start line names the supervisor's pid and `apprun reload`", async () => {
  await using dir = await appDir({ "app.ts": APP, "version.ts": `export const VERSION = "v1";` });
  await using s = await serveSupervised(dir, "app.ts");
  const line = s.proc.log.split("\n").find((l) => l.includes("supervisor pid"))!;
  assert.match(
    line,
    new RegExp(`supervisor pid ${s.pid}; reload with \`apprun reload --name app\``),
  );
  assert.match(line, new RegExp(`\`kill -HUP ${s.pid}\``));
  assert.equal(s.pid, s.proc.pid, "the pid printed is the supervisor's (bin/apprun execs)");
});

Deno.test("apprun reload by name, by control socket and alone: a kept connection is carried", async () => {
  await using dir = await appDir({ "app.ts": APP, "version.ts": `export const VERSION = "v1";` });
  await using s = await serveSupervised(dir, "app.ts");
  using kept = await RawClient.connect(s.port);
  let pid = await ask(kept);
  const control = `${dir.path}/apprun/app.sock`;
  for (const args of [["--name", "app"], ["--control", control], []]) {
    const r = await apprun(["reload", ...args], dir.env);
    assert.equal(r.code, 0, r.out);
    const m = r.out.match(/reloaded app: pid (\d+) → (\d+) in \d+ ms/);
    assert.ok(m, r.out);
    assert.equal(m[1], pid);
    const next = await ask(kept);
    assert.equal(next, m[2], `apprun reload ${args.join(" ")}: the kept connection, new pid`);
    assert.notEqual(next, pid);
    pid = next;
  }
  assert.equal(await ask(kept, "/"), "v1");
});

Deno.test("SIGHUP to the worker reloads through the supervisor; the connection is carried", async () => {
  await using dir = await appDir({ "app.ts": APP, "version.ts": `export const VERSION = "v1";` });
  await using s = await serveSupervised(dir, "app.ts");
  using kept = await RawClient.connect(s.port);
  const first = await ask(kept);
  Deno.kill(Number(first), "SIGHUP");
  const next = await waitUntil(
    async () => {
      const pid = await ask(kept);
      return pid !== first ? pid : undefined;
    },
    "a new worker on the kept connection",
    { timeoutMs: 20_000, everyMs: 50 },
  );
  assert.notEqual(next, first);
  assert.match(s.proc.log, new RegExp(`SIGHUP: asked the supervisor \\(pid ${s.pid}\\) to reload`));
  assert.ok(isAlive(s.pid), "the supervisor runs on");
  // Warm: the old worker exits once the new one is the main process, a moment after it served.
  await waitUntil(() => !isAlive(Number(first)) || undefined, "the old worker to exit", {
    timeoutMs: 5000,
    everyMs: 20,
  });
});

Deno.test("a reload whose code does not load is refused; the worker serves on", async () => {
  await using dir = await appDir({ "app.ts": APP, "version.ts": `export const VERSION = "v1";` });
  await using s = await serveSupervised(dir, "app.ts");
  using kept = await RawClient.connect(s.port);
  const first = await ask(kept);
  const broken: [string, RegExp][] = [
    [
      `throw new Error("bad config");\nexport const VERSION = "v2";`,
      /not reloaded: the new version does not load: handler .*app\.ts failed to load: .*bad config/,
    ],
    [
      `export const VERSION = "v2" +;`,
      /not reloaded: the new version does not load: [^]*SyntaxError/,
    ],
  ];
  for (const [source, why] of broken) {
    await Deno.writeTextFile(`${dir.path}/version.ts`, source);
    const r = await apprun(["reload"], dir.env);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, why);
    assert.doesNotMatch(r.out, /Stack backtrace/);
    // Nothing was stopped: the same worker answers on the same connection.
    assert.equal(await ask(kept), first);
    assert.equal(await ask(kept, "/"), "v1");
  }
  // SIGHUP to the supervisor, with the code still broken: refused and logged, nothing stops.
  Deno.kill(s.pid, "SIGHUP");
  await waitUntil(
    () => /reload \(SIGHUP\) refused, generation 1/.test(s.proc.log) || undefined,
    "refusal",
    { timeoutMs: 20_000, everyMs: 50 },
  );
  assert.equal(await ask(kept), first);
  assert.match(s.proc.log, /goes on serving: the new version does not load/);
  // Fixed: the reload goes through, on the same connection.
  await Deno.writeTextFile(`${dir.path}/version.ts`, `export const VERSION = "v3";`);
  const r = await apprun(["reload", "--name", "app"], dir.env);
  assert.equal(r.code, 0, r.out);
  assert.notEqual(await ask(kept), first);
  assert.equal(await ask(kept, "/"), "v3");
  const started = s.proc.log.match(/generation \d+: started /g) ?? [];
  assert.equal(started.length, 2, "the refused reloads started no worker");
});
