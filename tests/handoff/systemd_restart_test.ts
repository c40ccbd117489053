/**
 * Handoff under a real systemd 252 (a private user manager, the units `units/` renders): 200
 * keep-alive clients send requests in a loop while `systemctl --user restart` (cold, through
 * the fdstore) or `systemctl --user reload` (warm: ExecReload= starts the next process, which
 * takes over directly) runs 10 times. Every request is answered exactly once, no connection is
 * reset or closed, MainPID changes each time, every client is answered by more than one
 * generation and every generation answers, the fdstore is empty again after each handoff, and
 * after a reload the unit is active with its old main process gone. The same with two event
 * loops in the service (`--parallel 2`: docs/design.md, "Several loops").
 */
import assert from "node:assert/strict";
import { systemdTest, type UserManager } from "../_systemd.ts";
import { isAlive } from "../_proc.ts";
import { installApp } from "../_systemd_app.ts";
import { assertNothingLost, latencyLine } from "../_load.ts";
import { sleep, waitUntil } from "../_poll.ts";
import { runLoad } from "../../scripts/e2e/load.ts";

for (const loops of [1, 2]) {
  for (const verb of ["restart", "reload"] as const) {
    systemdTest(
      `handoff: 200 keep-alive clients through 10 systemctl ${verb}s, nothing lost` +
        (loops > 1 ? ` (--parallel ${loops})` : ""),
      (m) => handoffsUnderLoad(m, verb, loops),
    );
  }
}

async function handoffsUnderLoad(
  m: UserManager,
  verb: "restart" | "reload",
  loops: number,
): Promise<void> {
  const args = loops > 1 ? ["--parallel", String(loops)] : [];
  const app = await installApp(m, { fixture: "handoff.ts", args });
  const { port } = app;
  // Activate the service and let it become ready.
  const first = await fetch(`http://127.0.0.1:${port}/r?id=warm`);
  assert.equal((await first.text()).split(" ")[0], "warm");
  await m.waitFor("app.service", "ActiveState", "active");
  const pids: string[] = [await m.show("app.service", "MainPID")];
  let done!: () => void;
  const until = new Promise<void>((r) => done = r);
  const load = runLoad({ port, connections: 200, until });
  try {
    await sleep(500); // pacing: the load runs on the first generation
    for (let i = 0; i < 10; i++) {
      const r = await m.systemctl(verb, "app.service");
      assert.equal(r.code, 0, `${verb} ${i}: ${r.stderr}\n${await m.log()}`);
      const pid = await m.show("app.service", "MainPID");
      assert.ok(!pids.includes(pid), `${verb} ${i}: MainPID ${pid} is new`);
      assert.equal(await m.show("app.service", "ActiveState"), "active");
      if (verb === "reload") {
        // The old main process exits once the new one is main; nothing goes through the store.
        const old = pids[pids.length - 1];
        await waitUntil(() => !isAlive(Number(old)) || undefined, `pid ${old} to exit`);
      }
      pids.push(pid);
      await m.waitFor("app.service", "NFileDescriptorStore", "0"); // the bundle, removed
      await sleep(300); // pacing: the load runs on this generation
    }
  } finally {
    done();
  }
  const report = await load;
  console.log(`systemd: ${report.answered} answered, ${latencyLine(report)}`);
  assertNothingLost(report, `systemd ${verb}s`, 2001);
  const spanning = report.pidsPerConnection.filter((p) => p.length >= 2).length;
  assert.equal(spanning, 200, "every connection was answered by more than one generation");
  const allPids = new Set(report.pidsPerConnection.flat().map(String));
  assert.equal(pids.length, 11);
  for (const pid of pids.slice(1)) assert.ok(allPids.has(pid), `generation ${pid} answered`);
  assert.equal(await m.show("app.service", "NRestarts"), "0", "no restart was counted");
  if (loops > 1) {
    const served = (await app.log()).match(/serving on 2 event loops/g)?.length ?? 0;
    assert.equal(served, 11, "every generation served on its two loops");
  }
}
