/**
 * Under a real systemd 252 without a socket unit: apprun opens `--port` itself, so at each
 * handoff its listener travels through the fdstore beside the bundle (`apprun-listener-http`).
 * Across three `systemctl restart`s, 20 keep-alive connections are carried, a client that
 * connects while the old process drains waits in the stored listener's backlog and is served by
 * the new one, and after each resume the store holds only that listener (the bundle removed,
 * the listener not stored twice). The unit is the one `units/` renders for own listeners (no
 * socket unit); the socket-activated setup runs every other edge case: see `testUnderBoth` in
 * the edge_* files.
 */
import assert from "node:assert/strict";
import { systemdTest } from "../_systemd.ts";
import { installApp } from "../_systemd_app.ts";
import { GET, RawClient } from "../_net.ts";
import { waitUntilRead } from "../_proc_net.ts";
import { waitUntil } from "../_poll.ts";
import { ask, readAnswer, waitForLines } from "./_util.ts";

systemdTest(
  "systemd without a socket unit: the own listener and the bundle carry every connection",
  async (m) => {
    const app = await installApp(m, {
      name: "own",
      fixture: "handoff.ts",
      isSocketActivated: false,
      environment: { APPRUN_LOG: "info" },
    });
    const port = app.port;
    const clients = await Promise.all(Array.from({ length: 20 }, () => RawClient.connect(port)));
    try {
      for (const [i, c] of clients.entries()) await ask(c, `a${i}`);
      assert.equal(await m.show("own.service", "NFileDescriptorStore"), "0");
      const pids = [Number(await m.show("own.service", "MainPID"))];
      for (let round = 1; round <= 3; round++) {
        // A slow request holds the old process in its drain while a new client connects.
        await clients[0].write(GET(`/slow?ms=300&id=slow${round}`));
        await waitUntilRead([clients[0]]);
        const restarting = m.systemctl("restart", "own.service");
        await waitForLines(app, /SIGTERM: handing off/g, round);
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
        // The bundle is removed after the resume; only the listener stays stored.
        await waitUntil(
          async () => await m.show("own.service", "NFileDescriptorStore") === "1",
          "the store to hold only the listener",
        );
      }
      assert.equal((await app.log()).match(/resumed 20 connections/g)?.length, 3);
    } finally {
      for (const c of clients) c.close();
    }
  },
);
