/**
 * Regression: a SIGTERM that reaches a new worker after it drained the bundle but before it
 * listens for SIGTERM killed it (Deno's default action), and every carried connection with it:
 * the next worker found the bundle empty. The supervisor sends that SIGTERM when a second
 * restart (the control socket's, as `systemctl restart`) comes while the worker is starting.
 * Here the second restart is asked for the moment the starting worker holds the carried
 * connections (read from /proc), three times; every client must still be answered afterwards,
 * by the newest worker.
 *
 * Listening from the start must not make a stuck start-up deaf: while the worker holds nothing
 * (its handler still loading), SIGTERM and SIGINT end it at once, as before.
 *
 * Beside it, the same request under both managers at an ordinary moment (as soon as the new
 * worker exists): systemd 252 also stops a unit that is still activating and starts another,
 * exactly as the supervisor does, and no connection may be lost either way.
 */
import assert from "node:assert/strict";
import { skipWithoutSystemd } from "../_systemd.ts";
import { APPRUN, FIXTURES, spawn } from "../_proc.ts";
import { RawClient } from "../_net.ts";
import { socketInodes } from "../_proc_net.ts";
import { waitUntil } from "../_poll.ts";
import { ask, startSupervised, startSystemd } from "./_util.ts";
import { supervisorRequest } from "../../runtime/supervisor/mod.ts";

/** The control socket's `restart` (cold), not waited for. */
function requestRestart(control: string): void {
  supervisorRequest(control, { cmd: "restart" }).catch(() => {});
}

const STARTED_RE = /generation (\d+): started .* as pid (\d+)/g;

Deno.test("supervisor: a restart while the new worker starts loses no connection", async () => {
  await using app = await startSupervised();
  const clients = await Promise.all(Array.from({ length: 20 }, () => RawClient.connect(app.port)));
  try {
    for (const [i, c] of clients.entries()) await ask(c, `a${i}`);
    for (let round = 0; round < 3; round++) {
      const started = () => [...app.proc.log.matchAll(STARTED_RE)];
      const before = started().length;
      requestRestart(app.control);
      const [, generation, pid] = (await waitUntil(
        () => started()[before],
        () => `a new worker to start; supervisor output:\n${app.proc.log}`,
        { timeoutMs: 5000, everyMs: 2 },
      )).map(Number);
      // The moment the starting worker holds the carried connections, restart again (a busy
      // loop: the window before it listens for SIGTERM lasts a few milliseconds).
      const deadline = Date.now() + 5000;
      let sockets = 0;
      while ((sockets = socketInodes(pid).size) < clients.length && Date.now() < deadline);
      requestRestart(app.control);
      assert.ok(sockets >= clients.length, `pid ${pid} never held the connections`);
      const ready = new RegExp(`generation ${generation + 1} ready: pid (\\d+)`);
      const newest = Number((await app.proc.waitFor(ready, 10_000))[1]);
      for (const [i, c] of clients.entries()) {
        const a = await ask(c, `r${round}-${i}`).catch((err) => err as Error);
        assert.ok(!(a instanceof Error), `round ${round}, client ${i}: ${a}\n${app.proc.log}`);
        assert.deepEqual([a.id, a.pid], [`r${round}-${i}`, newest]);
      }
    }
  } finally {
    for (const c of clients) c.close();
  }
});

// The same request under both managers, sent as soon as the new worker exists: systemd 252 too
// stops a unit that is still activating (SIGTERM) and starts another; nothing may be lost.
for (const manager of ["supervisor", "systemd"] as const) {
  Deno.test({
    name: `a restart requested while the worker starts replaces it, losing nothing (${manager})`,
    ignore: manager === "systemd" && skipWithoutSystemd() !== null,
    async fn() {
      await using app = manager === "supervisor" ? await startSupervised() : await startSystemd();
      const clients = await Promise.all(
        Array.from({ length: 20 }, () => RawClient.connect(app.port)),
      );
      try {
        const oldPid = (await ask(clients[0], "a")).pid;
        for (const [i, c] of clients.entries()) await ask(c, `a${i}`);
        let starting = 0;
        if ("proc" in app) {
          requestRestart(app.control);
          const m = await app.proc.waitFor(/generation 2: started .* as pid (\d+)/, 10_000);
          starting = Number(m[1]);
          requestRestart(app.control);
          await app.proc.waitFor(/generation [3-9] ready/, 10_000);
        } else {
          const r = await app.m.systemctl("restart", "--no-block", "app.service");
          assert.equal(r.code, 0, r.stderr);
          starting = await waitUntil(
            async () => {
              const pid = await app.pid();
              return pid !== oldPid && pid !== 0 ? pid : 0;
            },
            "systemd to start the next process",
            { everyMs: 2 },
          );
          assert.equal(await app.m.show("app.service", "ActiveState"), "activating");
          const again = await app.m.systemctl("restart", "app.service");
          assert.equal(again.code, 0, again.stderr);
        }
        const newest = await app.pid();
        assert.ok(starting > 0 && newest !== starting, `${starting} was replaced by ${newest}`);
        for (const [i, c] of clients.entries()) {
          const a = await ask(c, `b${i}`);
          assert.deepEqual([a.id, a.pid], [`b${i}`, newest]);
        }
      } finally {
        for (const c of clients) c.close();
      }
    },
  });
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`a worker still loading its handler stops at once on ${signal}`, async () => {
    await using proc = spawn(APPRUN, [
      "serve",
      `${FIXTURES}/handoff_hang.ts`,
      "--no-supervisor",
      "--port",
      "0",
    ]);
    await proc.waitFor(/handoff_hang: loading/);
    const t0 = performance.now();
    proc.kill(signal);
    const status = await proc.wait(5000);
    assert.ok(performance.now() - t0 < 2000, `took ${performance.now() - t0} ms`);
    assert.equal(status.code, 0, proc.log);
  });
}
