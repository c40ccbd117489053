/**
 * Under a real systemd 252 without a socket unit: apprun opens `--port` itself, so at each
 * handoff its listener travels through the fdstore beside the bundle (`apprun-listener-http`).
 * Across three `systemctl restart`s, 20 keep-alive connections are carried, a client that
 * connects while the old process drains waits in the stored listener's backlog and is served by
 * the new one, and after each resume the store holds only that listener (the bundle removed,
 * the listener not stored twice). The socket-unit setup (installApp's pattern, as
 * systemd_restart_test.ts) runs every other edge case: see `testUnderBoth` in the edge_*
 * files.
 */
import assert from "node:assert/strict";
import { isAvailable, startUserManager } from "../_systemd.ts";
import { APPRUN, FIXTURES } from "../_helpers.ts";
import { ask, GET, RawClient, readAnswer, sleep } from "./_util.ts";

const reason = isAvailable();
if (reason) console.log(`skip: systemd edge tests: ${reason}`);

Deno.test({
  name: "systemd without a socket unit: the own listener and the bundle carry every connection",
  ignore: reason !== null,
  async fn() {
    await using m = await startUserManager();
    const probe = Deno.listen({ port: 0, hostname: "127.0.0.1" });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const logFile = `${m.dir}/own.log`;
    await m.writeUnit(
      "own.service",
      `[Unit]\nStartLimitIntervalSec=60\nStartLimitBurst=100\n[Service]\nType=notify\n` +
        `NotifyAccess=main\nExecStart=${APPRUN} serve ${FIXTURES}/handoff.ts --port ${port} ` +
        `--host 127.0.0.1 --idle-timeout 120s\nFileDescriptorStoreMax=16\nLimitNOFILE=20000\n` +
        `TimeoutStopSec=30\nStandardOutput=append:${logFile}\nStandardError=append:${logFile}\n`,
    );
    await m.daemonReload();
    const start = await m.systemctl("start", "own.service");
    assert.equal(start.code, 0, start.stderr);
    const log = () => Deno.readTextFile(logFile);
    const clients = await Promise.all(Array.from({ length: 20 }, () => RawClient.connect(port)));
    try {
      for (const [i, c] of clients.entries()) await ask(c, `a${i}`);
      assert.equal(await m.show("own.service", "NFileDescriptorStore"), "0");
      const pids = [Number(await m.show("own.service", "MainPID"))];
      for (let round = 1; round <= 3; round++) {
        // A slow request holds the old process in its drain while a new client connects.
        await clients[0].write(GET(`/slow?ms=300&id=slow${round}`));
        await sleep(50);
        const restarting = m.systemctl("restart", "own.service");
        const handingOff = () => log().then((t) => t.match(/SIGTERM: handing off/g)?.length ?? 0);
        while (await handingOff() < round) await sleep(10);
        using late = await RawClient.connect(port);
        await late.write(GET(`/r?id=late${round}`));
        assert.equal((await readAnswer(clients[0])).pid, pids.at(-1), "the old one finishes");
        const r = await restarting;
        assert.equal(r.code, 0, r.stderr);
        const pid = Number(await m.show("own.service", "MainPID"));
        assert.ok(!pids.includes(pid), `round ${round}: pid ${pid} is new`);
        pids.push(pid);
        const l = await readAnswer(late);
        assert.deepEqual([l.id, l.pid], [`late${round}`, pid], "connected during the drain");
        for (const [i, c] of clients.entries()) {
          const a = await ask(c, `r${round}-${i}`);
          assert.deepEqual([a.id, a.pid], [`r${round}-${i}`, pid]);
        }
        assert.equal(
          await m.show("own.service", "NFileDescriptorStore"),
          "1",
          "only the listener stays stored",
        );
      }
      assert.equal((await log()).match(/resumed 20 connections/g)?.length, 3);
    } finally {
      for (const c of clients) c.close();
    }
  },
});
