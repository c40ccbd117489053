/**
 * `apprun package` under real dpkg and a real systemd 252 manager (tests/_systemd.ts; dpkg
 * reaches it through scripts/systemd/dpkg-bridge.sh, the package's scripts and units as
 * shipped plus one drop-in for what a root user manager cannot do), with 50 keep-alive
 * clients, 20 WebSocket sessions and a prober opening a new connection every 25 ms:
 *
 * - handoff package: `dpkg -i` v1 (enabled, socket started); `dpkg -i` v2: no request fails,
 *   every connection is answered by the new process, `NAME version` says v2; `dpkg -i` of a
 *   v3 that crashes at start: rolled back to v2 with nothing dropped, the cause printed, and
 *   dpkg reports the failure (half-configured); `dpkg -r` stops it cleanly; `dpkg -P`
 *   leaves nothing behind;
 * - the usual stop-before/start-after scripts (`--upgrade-style stop-start`), same app, same
 *   load, one upgrade: the connections they lose are counted and printed beside the above.
 */
import assert from "node:assert/strict";
import { isAvailable, startUserManager } from "../_systemd.ts";
import { LiveClients, UPGRADE_FIXTURES, versionOf } from "../upgrade/_util.ts";
import { freePort } from "../_net.ts";
import { sleep } from "../_poll.ts";
import { buildDeb, DpkgBridge, missingTools, Prober, type ProbeReport } from "./_deb.ts";

const reason = isAvailable() ?? missingTools(["dpkg", "dpkg-deb", "nsenter", "deb-systemd-helper"]);
if (reason !== null) console.log(`dpkg tests skipped: ${reason}`);

/** What one upgrade cost the clients. */
interface Cost {
  requests: number;
  failed: number;
  connectionsLost: number;
  sessionsClosed: number;
  probes: ProbeReport;
}

/** Starts the clients, runs `step`, stops the clients and counts what failed. */
async function underLoad(port: number, step: () => Promise<void>) {
  const clients = await LiveClients.start(port, 50, 20);
  const prober = new Prober(port);
  await step();
  await sleep(500);
  const probes = await prober.stop();
  const { report, sockets } = await clients.stop();
  const cost: Cost = {
    requests: report.requests,
    failed: report.requests - report.answered,
    connectionsLost: report.resets + report.earlyCloses +
      report.errors.filter((e) => e.startsWith("connect:")).length,
    sessionsClosed: sockets.filter((s) => s.events.length > 0).length,
    probes,
  };
  return { cost, report, sockets };
}

function describe(label: string, c: Cost): string {
  return `  ${label}: ${c.failed} of ${c.requests} keep-alive requests failed, ${c.connectionsLost} of ` +
    `50 connections lost, ${c.sessionsClosed} of 20 WebSockets closed; new connections: ` +
    `${c.probes.failed} of ${c.probes.attempts} failed`;
}

Deno.test({
  name:
    "dpkg: v1 → v2 hands every connection over, a crashing v3 is rolled back and reported; the usual scripts lose them",
  ignore: reason !== null,
  async fn() {
    await using m = await startUserManager();
    const bridge = await DpkgBridge.setup(m);
    const dir = `${m.dir}/debs`;
    await Deno.mkdir(dir);
    const port = freePort();
    const name = "apprun-demo";
    const debs: Record<string, string> = {};
    for (const [v, fixture] of [["1", "v1"], ["2", "v2"], ["3", "crash"]]) {
      debs[v] = await buildDeb(`${UPGRADE_FIXTURES}/${fixture}.ts`, {
        name,
        version: v,
        port,
        dir,
      });
    }
    await bridge.rootUserManagerDropIn(name);

    const v1 = await bridge.run(["dpkg", "-i", debs["1"]]);
    assert.equal(v1.code, 0, v1.out);
    assert.equal(await m.show(`${name}.socket`, "UnitFileState"), "enabled");
    assert.equal(await m.show(`${name}.socket`, "ActiveState"), "active");
    assert.equal(await versionOf(port), "v1", "the first connection starts v1");

    let newPid = 0;
    const handoff = await underLoad(port, async () => {
      const oldPid = Number(await m.show(`${name}.service`, "MainPID"));
      const t0 = performance.now();
      const v2 = await bridge.run(["dpkg", "-i", debs["2"]]);
      assert.equal(v2.code, 0, v2.out);
      console.log(`  dpkg -i v2 took ${Math.round(performance.now() - t0)} ms`);
      assert.match(
        v2.out,
        /^upgraded apprun-demo: apprun-demo 1 v1\.ts .* → apprun-demo 2 v2\.ts /m,
      );
      newPid = Number(await m.show(`${name}.service`, "MainPID"));
      assert.notEqual(newPid, oldPid);
      assert.equal(await versionOf(port), "v2");
      const version = await bridge.run([`/var/lib/apprun/${name}/${name}`, "version"]);
      assert.match(version.out, /^apprun-demo 2 v2\.ts sha256:[0-9a-f]{12} \(apprun [\d.]+\)\n$/);
      await sleep(1000); // every client gets answered by v2 before the next step

      const v3 = await bridge.run(["dpkg", "-i", debs["3"]]);
      assert.notEqual(v3.code, 0, v3.out);
      assert.match(v3.out, /^rolled back apprun-demo: apprun-demo 3 crash\.ts .* failed /m);
      assert.match(v3.out, /\| .*crash\.ts: cannot start \(simulated\)/, "the cause is printed");
      assert.match(v3.out, /post-installation script subprocess returned error exit status 1/);
      assert.equal(await versionOf(port), "v2", "v2 serves again");
      const status = await bridge.run(["dpkg-query", "-W", "-f", "${Status} ${Version}", name]);
      assert.equal(status.out, "install ok half-configured 3");
    });
    assert.equal(handoff.cost.failed, 0, describe("handoff", handoff.cost));
    assert.equal(handoff.cost.connectionsLost, 0);
    assert.equal(handoff.cost.sessionsClosed, 0);
    assert.equal(handoff.cost.probes.failed, 0, handoff.cost.probes.errors.join("\n"));
    for (const pids of handoff.report.pidsPerConnection) {
      assert.ok(pids.includes(newPid), `every connection answered by v2's pid ${newPid}: ${pids}`);
    }
    for (const s of handoff.sockets) assert.deepEqual(s.versions.slice(0, 2), ["v1", "v2"]);
    console.log(describe("handoff package, dpkg -i v2 and a crashing v3", handoff.cost));

    const removed = await bridge.run(["dpkg", "-r", name]);
    assert.equal(removed.code, 0, removed.out);
    assert.equal(await m.show(`${name}.socket`, "ActiveState"), "inactive");
    assert.equal(await m.show(`${name}.service`, "ActiveState"), "inactive");
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port }), "nothing listens");
    assert.notEqual((await bridge.run(["test", "-e", `/var/lib/apprun/${name}`])).code, 0);
    const purged = await bridge.run(["dpkg", "-P", name]);
    assert.equal(purged.code, 0, purged.out);
    const wants = `${m.unitDir}/sockets.target.wants/${name}.socket`;
    await assert.rejects(Deno.lstat(wants), "the enablement link is gone");

    // The status quo: the same app and load, packaged with the usual stop/start scripts.
    const usual = "apprun-usual";
    const usualPort = freePort();
    const u1 = await buildDeb(`${UPGRADE_FIXTURES}/v1.ts`, {
      name: usual,
      version: "1",
      port: usualPort,
      dir,
      style: "stop-start",
    });
    const u2 = await buildDeb(`${UPGRADE_FIXTURES}/v2.ts`, {
      name: usual,
      version: "2",
      port: usualPort,
      dir,
      style: "stop-start",
    });
    await bridge.rootUserManagerDropIn(usual);
    const first = await bridge.run(["dpkg", "-i", u1]);
    assert.equal(first.code, 0, first.out);
    assert.equal(await versionOf(usualPort), "v1");
    const stopStart = await underLoad(usualPort, async () => {
      const r = await bridge.run(["dpkg", "-i", u2]);
      assert.equal(r.code, 0, r.out);
      assert.equal(await versionOf(usualPort), "v2");
    });
    console.log(describe("usual stop/start package, dpkg -i v2", stopStart.cost));
    assert.ok(
      stopStart.cost.connectionsLost + stopStart.cost.sessionsClosed > 0,
      "the usual scripts lose connections (else this comparison measures nothing)",
    );
    await bridge.run(["dpkg", "-P", usual]);
  },
});
