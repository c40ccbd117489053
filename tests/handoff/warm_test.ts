/**
 * Warm reloads that go wrong, and what must hold anyway (issue 14), under the embedded
 * supervisor and under a real systemd 252 (`systemctl reload`): a next version that throws at
 * load, one that never gets ready (the reload times out), and one that dies once it holds the
 * carried connections — each time the running process serves throughout, 50 keep-alive
 * clients lose nothing, the reload says it failed, and the next good reload goes through.
 * Also: reloads asked for during a reload are coalesced into one more; and under systemd, a
 * `systemctl restart` after a warm reload still hands every connection off through the
 * fdstore (the next process must be systemd's own child, not the reload helper's: regression).
 */
import assert from "node:assert/strict";
import { runLoad } from "../../scripts/e2e/load.ts";
import { assertNothingLost } from "../_load.ts";
import { ROOT } from "../_proc.ts";
import { RawClient } from "../_net.ts";
import { sleep, waitUntil } from "../_poll.ts";
import { skipWithoutSystemd } from "../_systemd.ts";
import { type App, ask, startSupervised, startSystemd, testUnderBoth } from "./_util.ts";

/** A file the fixture reads as it loads (tests/fixtures/warm_faults.ts), per registration. */
function faultFile(): string {
  Deno.mkdirSync(`${ROOT}/.test-out/warm`, { recursive: true });
  return `${ROOT}/.test-out/warm/fault-${crypto.randomUUID()}`;
}

/**
 * Under load, a reload of the version `fault` makes fail: it fails, with `why` in the manager's
 * answer or apprun's log; the running process answers throughout; then a good reload works.
 */
async function failedReload(app: App, file: string, fault: string, why: RegExp): Promise<void> {
  const before = await app.pid();
  let stop!: () => void;
  const until = new Promise<void>((r) => stop = r);
  const load = runLoad({ port: app.port, connections: 50, until });
  try {
    await sleep(300); // pacing: the load runs on the running version
    await Deno.writeTextFile(file, fault);
    const outcome = await app.tryReload();
    assert.equal(outcome.ok, false, `the ${fault} reload failed`);
    assert.match(`${outcome.message}\n${await app.log()}`, why);
    assert.equal(await app.pid(), before, "the running process is still the main one");
    await sleep(300); // pacing: the load goes on, on the same process
    await Deno.writeTextFile(file, "");
    const after = await app.reload();
    assert.notEqual(after, before);
    await sleep(300); // pacing: the load runs on the new version
  } finally {
    stop();
  }
  const report = await load;
  assertNothingLost(report, `a failed (${fault}) reload`, 50);
  const pids = new Set(report.pidsPerConnection.flat());
  assert.ok(pids.has(before), "answered by the running version");
  assert.equal(report.pidsPerConnection.filter((p) => p.length < 2).length, 0, "all carried");
}

const throwing = faultFile();
testUnderBoth(
  "warm: a new version that throws at load fails the reload; nothing lost",
  (app) =>
    failedReload(
      app,
      throwing,
      "throw",
      /the new version does not load: handler .*warm_faults\.ts failed to load: .*the new version is broken/,
    ),
  { fixture: "warm_faults.ts", env: { WARM_FAULT: throwing } },
);

const hanging = faultFile();
testUnderBoth(
  "warm: a new version that never gets ready times out; nothing lost",
  (app) =>
    failedReload(
      app,
      hanging,
      "hang",
      app.manager === "systemd"
        ? /ReloadResult=timeout/
        : /not reloaded: the reload did not finish within/,
    ),
  { fixture: "warm_faults.ts", env: { WARM_FAULT: hanging }, timeoutStart: 4 },
);

const exiting = faultFile();
testUnderBoth(
  "warm: a new version that dies holding the connections: the running one resumes them all",
  async (app) => {
    await failedReload(app, exiting, "exit", /did not take over: resuming its \d+ connections/);
  },
  { fixture: "warm_faults.ts", env: { WARM_FAULT: exiting } },
);

Deno.test("warm: SIGHUPs during a reload are coalesced into one more reload (supervisor)", async () => {
  await using app = await startSupervised();
  using kept = await RawClient.connect(app.port);
  const first = (await ask(kept, "a")).pid;
  for (let i = 0; i < 5; i++) {
    app.proc.kill("SIGHUP");
    await sleep(20); // pacing: a burst, all within the first reload
  }
  const started = () => app.proc.log.match(/reload command as pid/g)?.length ?? 0;
  const ready = () => app.proc.log.match(/ready: pid \d+, took over from pid/g)?.length ?? 0;
  await waitUntil(() => ready() >= 2 || undefined, "two reloads", { timeoutMs: 30_000 });
  await sleep(1500); // a third would have started by now
  assert.equal(started(), 2, app.proc.log);
  assert.equal(ready(), 2, app.proc.log);
  const last = (await ask(kept, "b")).pid;
  assert.notEqual(last, first);
  assert.equal(last, await app.pid());
});

Deno.test({
  name: "warm: systemctl reloads during a reload are queued as one more (systemd)",
  ignore: skipWithoutSystemd() !== null,
  async fn() {
    await using app = await startSystemd();
    using kept = await RawClient.connect(app.port);
    const first = (await ask(kept, "a")).pid;
    const reloads = await Promise.all(
      [0, 1, 2].map(async (i) => {
        await sleep(150 * i); // pacing: the 2nd and 3rd come while the 1st runs
        return await app.m.systemctl("reload", "app.service");
      }),
    );
    for (const r of reloads) assert.equal(r.code, 0, r.stderr);
    const takeovers = (await app.log()).match(/took over \d+ connections from pid \d+ as/g) ?? [];
    assert.equal(takeovers.length, 2, await app.log());
    const last = (await ask(kept, "b")).pid;
    assert.notEqual(last, first);
    assert.equal(last, await app.pid());
  },
});

Deno.test({
  name: "warm regression: systemctl restart after a reload still hands every connection off",
  ignore: skipWithoutSystemd() !== null,
  async fn() {
    // The bug: a next process that is the reload helper's child, when MAINPID= names it, is one
    // systemd does not follow as its own; its next stop SIGKILLs it at once after SIGTERM, so
    // the cold handoff never happens and every connection is reset.
    await using app = await startSystemd();
    using kept = await RawClient.connect(app.port);
    const pids = [(await ask(kept, "a")).pid];
    pids.push(await app.reload());
    assert.equal((await ask(kept, "b")).pid, pids[1]);
    pids.push(await app.restart());
    assert.equal((await ask(kept, "c")).pid, pids[2], "carried by the cold handoff");
    assert.match(await app.log(), /SIGTERM: handing off/);
    pids.push(await app.reload());
    assert.equal((await ask(kept, "d")).pid, pids[3]);
    assert.equal(new Set(pids).size, 4, `four processes: ${pids}`);
  },
});
