/**
 * The supervisor options a person running it by hand needs (issue 16): a first worker that
 * fails gives up at once (`isFirstFailureFinal`); a restart is checked before the running
 * worker is stopped (`beforeRestart`), requests made during a check are checked again after
 * it; requested restarts may be kept out of the start limit (`isRequestedStartCounted`).
 * Real python workers, a real listener, real signals.
 */
import assert from "node:assert/strict";
import { RestartRefused } from "../../runtime/supervisor/mod.ts";
import { LineClient, pyWorker, withSupervisor } from "./_harness.ts";
import { sleep } from "../_poll.ts";

Deno.test("isFirstFailureFinal: a first worker that exits before READY=1 ends it at once", async () => {
  const worker = pyWorker({ TW_START: "exit:5" });
  await withSupervisor({ worker, isFirstFailureFinal: true }, async ({ sup, log }) => {
    const t0 = performance.now();
    await assert.rejects(sup.start(), /gave up \(exit-code\)/);
    assert.equal(await sup.done, 5, "the worker's status");
    assert.ok(performance.now() - t0 < 2000);
    assert.equal(log.grep(/: started /).length, 1, "no on-failure restart");
    assert.doesNotMatch(log.text, /restarting in/);
    // One line says it (quietly: the worker said why), nothing repeats it at warn or error.
    assert.equal(log.grep(/the first start failed, giving up/).length, 1, log.text);
    assert.deepEqual(log.grep(/^(warn|error) /), [], log.text);
  });
});

Deno.test("isFirstFailureFinal: a first worker that never sends READY=1 is reported as an error", async () => {
  const worker = pyWorker({ TW_START: "never" });
  await withSupervisor(
    { worker, isFirstFailureFinal: true, startTimeoutMs: 300 },
    async ({ sup, log }) => {
      await assert.rejects(sup.start(), /gave up \(timeout\)/);
      assert.equal(log.grep(/: started /).length, 1);
      assert.equal(log.grep(/^error .*the first start failed, giving up/).length, 1, log.text);
    },
  );
});

Deno.test("isFirstFailureFinal: once a worker was ready, a crash is restarted as before", async () => {
  await withSupervisor({ isFirstFailureFinal: true }, async ({ sup, port }) => {
    const first = await sup.start();
    const c = await LineClient.connect(port);
    await c.send({ cmd: "exit", code: 3 });
    await c.close();
    for (let i = 0; i < 300 && !(sup.state === "ready" && sup.status().generation === 2); i++) {
      await sleep(10);
    }
    assert.equal(sup.status().generation, 2);
    assert.notEqual(sup.status().pid, first.pid);
  });
});

Deno.test("beforeRestart: a refused restart leaves the running worker serving", async () => {
  let isBroken = true;
  const beforeRestart = () =>
    isBroken ? Promise.reject(new Error("the new code does not load")) : Promise.resolve();
  await withSupervisor({ beforeRestart }, async ({ sup, port, log }) => {
    const first = await sup.start();
    const c = await LineClient.connect(port);
    const err = await sup.restart(undefined, "test").catch((e) => e);
    assert.ok(err instanceof RestartRefused, String(err));
    assert.match(err.message, /not restarted: the new code does not load/);
    assert.match(
      log.text,
      /restart \(test\) refused, generation 1 \(pid \d+\) goes on serving: the new code does not/,
    );
    // Not stopped, not restarted: the same process answers on the same connection.
    assert.equal((await c.request({ cmd: "info" })).pid, first.pid);
    assert.equal(sup.status().generation, 1);
    isBroken = false;
    const next = await sup.restart(undefined, "test");
    assert.notEqual(next.pid, first.pid);
    await c.close();
  });
});

Deno.test("beforeRestart: requests made during a check are settled by the next check", async () => {
  const checks: { reason: string; at: number }[] = [];
  const beforeRestart = async (reason: string) => {
    checks.push({ reason, at: performance.now() });
    await sleep(300);
  };
  await withSupervisor({ beforeRestart }, async ({ sup }) => {
    await sup.start();
    const a = sup.restart(undefined, "a");
    await sleep(100);
    const b = sup.restart(undefined, "b");
    const c = sup.restart(undefined, "c");
    const [ra, rb, rc] = await Promise.all([a, b, c]);
    assert.deepEqual(checks.map((x) => x.reason), ["a", "b; c"]);
    assert.ok(checks[1].at - checks[0].at >= 290, "the second check starts after the first");
    assert.equal(rb.generation, rc.generation, "b and c are one restart");
    assert.ok(rb.generation > ra.generation);
  });
});

Deno.test("beforeRestart is not asked for a restart with a new command (an upgrade)", async () => {
  let asked = 0;
  const beforeRestart = () => (asked++, Promise.reject(new Error("no")));
  await withSupervisor({ beforeRestart }, async ({ sup }) => {
    await sup.start();
    await sup.restart(pyWorker({ TW_STATUS: "v2" }), "upgrade");
    assert.equal(asked, 0);
    assert.equal(sup.status().status, "v2");
  });
});

Deno.test("isRequestedStartCounted: false keeps requested restarts out of the start limit", async () => {
  const startLimit = { burst: 2, intervalMs: 60_000 };
  await withSupervisor({ startLimit, isRequestedStartCounted: false }, async ({ sup }) => {
    await sup.start();
    for (let i = 0; i < 4; i++) await sup.restart();
    assert.equal(sup.state, "ready");
    assert.equal(sup.status().generation, 5);
  });
});

Deno.test("a control restart stops a worker still starting (a rollback does not wait for it)", async () => {
  await withSupervisor({ startTimeoutMs: 60_000 }, async ({ sup }) => {
    await sup.start();
    // An upgrade whose new worker never sends READY=1 …
    const upgrade = sup.restart(pyWorker({ TW_START: "never" }), "upgrade");
    upgrade.catch(() => {});
    await sleep(500);
    assert.equal(sup.state, "starting");
    // … and its rollback, as a control request sends it: not merged behind that READY=1.
    const t0 = performance.now();
    const back = await sup.restart(pyWorker(), "rollback", { isPreempting: true });
    assert.ok(performance.now() - t0 < 5000);
    assert.equal(sup.state, "ready");
    assert.equal(back.generation, 3);
  });
});
