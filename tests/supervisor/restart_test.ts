/**
 * Restarts and failures as systemd handles them: crash → automatic restart with the store
 * kept, systemd's clean-exit rules, the start limit, the stop timeout (SIGKILL), EXTEND_TIMEOUT_USEC=
 * while stopping, STOPPING=1 from the worker, the watchdog, and a restart with a new command
 * (adopted on READY=1, rolled back on failure).
 */
import assert from "node:assert/strict";
import { LineClient, pyWorker, withSupervisor } from "./_harness.ts";
import { sleep, waitUntil } from "../_poll.ts";
import { isAlive } from "../_proc.ts";

const keepConn = ["FDSTORE=1", "FDNAME=conn", "FDPOLL=0"];

Deno.test("a crash restarts the worker after restartDelayMs, with the store kept", async () => {
  await withSupervisor({ restartDelayMs: 200 }, async ({ sup, port, log }) => {
    const first = await sup.start();
    const c = await LineClient.connect(port);
    await c.request({ cmd: "notify", lines: keepConn, attach: "conn" });
    await c.request({ cmd: "barrier" });
    const killer = await LineClient.connect(port);
    await killer.send({ cmd: "exit", code: 3 });
    await log.waitFor(/pid \d+ exited with status 3 \(exit-code\)/);
    const crashedAt = performance.now();
    await waitUntil(() => sup.state === "ready" && sup.status().generation === 2, "generation 2");
    assert.ok(performance.now() - crashedAt >= 180, "restarted before restartDelayMs");
    const info = await c.request({ cmd: "info" });
    assert.notEqual(info.pid, first.pid);
    assert.equal(info.conn, "conn");
    assert.equal(sup.status().restarts, 1);
    assert.match(log.text, /restarting in 200 ms \(restart: on-failure\), keeping 1 stored fd/);
    // Killed by SIGKILL: a failure too.
    await killer.close();
    await c.send({ cmd: "kill", signal: 9 }); // no reply: the store keeps c open (the trap)
    await waitUntil(() => sup.status().generation === 3 && sup.state === "ready", "generation 3");
    assert.match(log.text, /killed by SIGKILL \(signal\)/);
    assert.equal((await c.request({ cmd: "info" })).conn, "conn");
    await c.close();
  });
});

Deno.test("a worker killed by SIGHUP from elsewhere stopped cleanly: no restart", async () => {
  await withSupervisor({}, async ({ sup }) => {
    const { pid } = await sup.start();
    Deno.kill(pid, "SIGKILL"); // a failure: restarted
    await waitUntil(() => sup.status().generation === 2 && sup.state === "ready", "restart");
    const second = sup.status().pid!;
    // Death by SIGHUP, SIGINT, SIGTERM or SIGPIPE is clean for a daemon (is_clean_exit).
    Deno.kill(second, "SIGHUP");
    assert.equal(await sup.done, 0);
    assert.equal(sup.state, "stopped");
    assert.equal(sup.status().generation, 2);
  });
});

Deno.test("restart: no gives up with the worker's status", async () => {
  await withSupervisor({ restart: "no" }, async ({ sup, port, log }) => {
    await sup.start();
    const c = await LineClient.connect(port);
    await c.send({ cmd: "exit", code: 7 });
    assert.equal(await sup.done, 7);
    assert.equal(sup.state, "failed");
    assert.match(log.text, /restart is "no": giving up/);
    await c.close();
  });
});

Deno.test("the start limit stops the restarts: start-limit-hit, exit 1", async () => {
  const worker = pyWorker({ TW_START: "exit:1" });
  const startLimit = { burst: 3, intervalMs: 10_000 };
  await withSupervisor({ worker, startLimit, restartDelayMs: 10 }, async ({ sup, log }) => {
    await assert.rejects(sup.start(), /gave up \(start-limit-hit\)/);
    assert.equal(await sup.done, 1);
    assert.equal(log.grep(/: started /).length, 3);
    assert.match(log.text, /start request repeated too quickly: more than 3 starts in 10000 ms/);
  });
});

Deno.test("requested restarts count toward the start limit too", async () => {
  const startLimit = { burst: 2, intervalMs: 10_000 };
  await withSupervisor({ startLimit }, async ({ sup }) => {
    await sup.start();
    await sup.restart();
    await assert.rejects(sup.restart(), /gave up \(start-limit-hit\)/);
    assert.equal(await sup.done, 1);
    assert.deepEqual(sup.status().storedFds, []);
  });
});

Deno.test("a worker that ignores SIGTERM gets SIGKILL after stopTimeoutMs", async () => {
  const worker = pyWorker({ TW_TERM: "ignore" });
  await withSupervisor({ worker, stopTimeoutMs: 300 }, async ({ sup, log }) => {
    const first = await sup.start();
    const next = await sup.restart();
    assert.ok(next.handoffMs! >= 300, `handoff ${next.handoffMs} ms before the stop timeout`);
    assert.match(log.text, /still runs 300 ms after being asked to stop \(stop timeout\): SIGKILL/);
    assert.match(log.text, new RegExp(`pid ${first.pid} killed by SIGKILL \\(timeout\\)`));
    assert.equal(isAlive(first.pid), false);
  });
});

Deno.test("EXTEND_TIMEOUT_USEC= while stopping holds off the SIGKILL", async () => {
  const worker = pyWorker({ TW_TERM: "extend:3000000:1200" });
  await withSupervisor({ worker, stopTimeoutMs: 500 }, async ({ sup, log }) => {
    await sup.start();
    const next = await sup.restart();
    assert.ok(next.handoffMs! >= 1200);
    assert.doesNotMatch(log.text, /SIGKILL/);
    assert.match(log.text, /exited with status 0/);
  });
});

Deno.test("STOPPING=1 from a running worker: it stops on its own, the supervisor too", async () => {
  await withSupervisor({}, async ({ sup, port }) => {
    await sup.start();
    const c = await LineClient.connect(port);
    await c.request({ cmd: "notify", lines: ["STOPPING=1"] });
    await c.request({ cmd: "barrier" });
    assert.equal(sup.state, "stopping");
    await c.request({ cmd: "notify", lines: ["READY=1"] });
    await c.request({ cmd: "barrier" });
    assert.equal(sup.state, "stopping", "READY=1 must not bring a stopping worker back");
    await c.send({ cmd: "exit", code: 0 });
    assert.equal(await sup.done, 0);
    await c.close();
  });
});

Deno.test("the watchdog: WATCHDOG_USEC/WATCHDOG_PID passed, pings keep it, silence aborts it", async () => {
  const worker = pyWorker({ TW_WATCHDOG: "ping" });
  await withSupervisor({ worker, watchdogUsec: 800_000 }, async ({ sup, port, log }) => {
    const first = await sup.start();
    const c = await LineClient.connect(port);
    const { env } = await c.request({ cmd: "info" });
    assert.equal(env.WATCHDOG_USEC, "800000");
    assert.equal(env.WATCHDOG_PID, String(first.pid));
    await sleep(2000); // pings every 200 ms keep it alive past two and a half intervals
    assert.equal(sup.status().pid, first.pid, "a pinging worker was killed");
    // WATCHDOG=trigger: as if the pings had stopped.
    await c.send({ cmd: "notify", lines: ["STATUS=stuck", "WATCHDOG=trigger"] });
    await log.waitFor(/watchdog request \(last status: stuck\)!/);
    await waitUntil(() => sup.status().generation === 2 && sup.state === "ready", "restart");
    assert.match(log.text, new RegExp(`SIGABRT to pid ${first.pid} \\(watchdog\\)`));
    assert.match(log.text, new RegExp(`pid ${first.pid} killed by SIGABRT \\(watchdog\\)`));
    await c.close();
  });
});

Deno.test("the watchdog fires when the pings stop", async () => {
  await withSupervisor({ watchdogUsec: 200_000 }, async ({ sup, log }) => {
    const first = await sup.start();
    await log.waitFor(/watchdog timeout \(limit 200 ms\)!/);
    await waitUntil(() => sup.status().generation === 2 && sup.state === "ready", "restart");
    assert.notEqual(sup.status().pid, first.pid);
  });
});

Deno.test("restart(command) adopts the new command once its worker is ready", async () => {
  await withSupervisor({}, async ({ sup, port }) => {
    await sup.start();
    const next = await sup.restart(pyWorker({ TW_STATUS: "v2" }));
    assert.equal(sup.command.env.TW_STATUS, "v2");
    assert.equal(sup.status().status, "v2");
    const c = await LineClient.connect(port);
    assert.equal((await c.request({ cmd: "info" })).pid, next.pid);
    await c.close();
  });
});

Deno.test("restart(command) whose worker fails: rejected, the previous command comes back", async () => {
  await withSupervisor({}, async ({ sup, log }) => {
    const first = await sup.start();
    await assert.rejects(
      sup.restart(pyWorker({ TW_START: "exit:4" })),
      /generation 2 \(.*\) failed to start \(exit-code\)/,
    );
    assert.match(log.text, /the new worker command failed to start/);
    await waitUntil(() => sup.state === "ready", "the previous command to be ready again");
    assert.equal(sup.status().generation, 3);
    assert.notEqual(sup.status().pid, first.pid);
    assert.equal(sup.command.env.TW_START, undefined);
  });
});

Deno.test("restart requests while one is in progress are merged into it", async () => {
  await withSupervisor({}, async ({ sup }) => {
    await sup.start();
    const [a, b] = await Promise.all([sup.restart(), sup.restart()]);
    assert.equal(a.generation, 2);
    assert.deepEqual(a, b);
  });
});

Deno.test("restart requests while the worker starts are merged into one, after its READY=1", async () => {
  const worker = pyWorker({ TW_START: "delay:400" });
  await withSupervisor({ worker }, async ({ sup, log }) => {
    await sup.start();
    const first = sup.restart();
    await waitUntil(() => sup.state === "starting", "generation 2 starting");
    const during = [sup.restart(), sup.restart(), sup.restart()];
    await sleep(100);
    assert.equal(sup.state, "starting", "the starting worker was stopped");
    assert.equal((await first).generation, 2);
    for (const reply of await Promise.all(during)) assert.equal(reply.generation, 3);
    assert.equal(log.grep(/: started /).length, 3);
    assert.equal(log.grep(/SIGTERM to pid \d+ \(restart\)/).length, 2);
  });
});
