/**
 * Handoff under a real systemd 252 (a private user manager): 200 keep-alive clients send
 * requests in a loop while `systemctl --user restart` runs 10 times. Every request is answered
 * exactly once, no connection is reset or closed, MainPID changes each time, each client's
 * answers come from every generation, and the fdstore is empty again after each resume.
 */
import assert from "node:assert/strict";
import { isAvailable, startUserManager } from "../_systemd.ts";
import { installApp } from "./_util.ts";
import { sleep } from "../_helpers.ts";
import { percentile, runLoad } from "../../scripts/e2e/load.ts";

const reason = isAvailable();
if (reason) console.log(`skip: systemd handoff tests: ${reason}`);

Deno.test({
  name: "handoff: 200 keep-alive clients through 10 systemctl restarts, nothing lost",
  ignore: reason !== null,
  async fn() {
    await using m = await startUserManager();
    const port = await installApp(m, "handoff.ts");
    // Activate the service and let it become ready.
    const first = await fetch(`http://127.0.0.1:${port}/r?id=warm`);
    assert.equal((await first.text()).split(" ")[0], "warm");
    await m.waitFor("app.service", "ActiveState", "active");
    const pids: string[] = [await m.show("app.service", "MainPID")];
    let done!: () => void;
    const until = new Promise<void>((r) => done = r);
    const load = runLoad({ port, connections: 200, until });
    try {
      await sleep(500);
      for (let i = 0; i < 10; i++) {
        const r = await m.systemctl("restart", "app.service");
        assert.equal(r.code, 0, `restart ${i}: ${r.stderr}\n${await m.log()}`);
        const pid = await m.show("app.service", "MainPID");
        assert.ok(!pids.includes(pid), `restart ${i}: MainPID ${pid} is new`);
        pids.push(pid);
        await sleep(300);
        assert.equal(
          await m.show("app.service", "NFileDescriptorStore"),
          "0",
          "bundle removed after resume",
        );
      }
      await sleep(300);
    } finally {
      done();
    }
    const report = await load;
    console.log(
      `systemd: ${report.answered} answered, p50 ${
        percentile(report.latencies, 50).toFixed(1)
      } ms, ` +
        `p99 ${percentile(report.latencies, 99).toFixed(1)} ms, max ${
          percentile(report.latencies, 100).toFixed(1)
        } ms`,
    );
    assert.deepEqual(report.errors.slice(0, 5), []);
    assert.equal(report.resets, 0);
    assert.equal(report.earlyCloses, 0);
    assert.equal(report.wrongAnswers, 0);
    assert.equal(report.badStatus, 0);
    assert.equal(report.answered, report.requests);
    assert.ok(report.answered > 2000, `only ${report.answered} requests answered`);
    const spanning = report.pidsPerConnection.filter((p) => p.length >= 2).length;
    assert.equal(spanning, 200, "every connection was answered by more than one generation");
    const allPids = new Set(report.pidsPerConnection.flat().map(String));
    for (const pid of pids.slice(1)) assert.ok(allPids.has(pid), `generation ${pid} answered`);
  },
});
