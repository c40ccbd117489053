/**
 * Starting a worker as systemd does for Type=notify: the LISTEN_* and NOTIFY_SOCKET
 * environment, READY=1 gating under the start timeout, NotifyAccess=main, and the failed
 * starts (no READY=1, exit before READY=1, nothing to exec). Real processes, real sockets.
 */
import assert from "node:assert/strict";
import { openListeners } from "../../runtime/listen.ts";
import { closeFd } from "../../runtime/sys/mod.ts";
import { LineClient, pyWorker, withSupervisor } from "./_harness.ts";
import { sleep } from "../_poll.ts";

Deno.test("start() passes LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID = the worker's pid", async () => {
  const [admin] = openListeners({ port: 0, host: "127.0.0.1" });
  admin.name = "admin";
  try {
    const worker = pyWorker({ LISTEN_FDS: "9", LISTEN_PID: "1", NOTIFY_SOCKET: "/bogus" });
    await withSupervisor({ worker, listeners: [admin] }, async ({ sup, port, listener }) => {
      const ready = await sup.start();
      const c = await LineClient.connect(port);
      const info = await c.request({ cmd: "info" });
      await c.close();
      assert.equal(info.pid, ready.pid);
      assert.deepEqual(info.env, {
        LISTEN_FDS: "2",
        LISTEN_PID: String(ready.pid),
        LISTEN_FDNAMES: "http:admin",
        NOTIFY_SOCKET: sup.notifySocket,
        WATCHDOG_USEC: null,
        WATCHDOG_PID: null,
      });
      assert.deepEqual(info.fds.map((f: { fd: number; name: string }) => [f.fd, f.name]), [
        [3, "http"],
        [4, "admin"],
      ]);
      // The notify socket lives alone in a private directory.
      const dir = sup.notifySocket!.replace(/\/notify$/, "");
      assert.equal(Deno.statSync(dir).mode! & 0o777, 0o700);
      assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["notify"]);
      assert.equal(listener.name, "http");
    });
  } finally {
    closeFd(admin.fd);
  }
});

Deno.test("start() resolves only after READY=1", async () => {
  await withSupervisor({ worker: pyWorker({ TW_START: "delay:400" }) }, async ({ sup }) => {
    const t0 = performance.now();
    const started = sup.start();
    await sleep(150); // well inside the worker's 400 ms before READY=1
    assert.equal(sup.state, "starting");
    assert.equal(sup.status().state, "starting");
    const ready = await started;
    assert.ok(performance.now() - t0 >= 400, "resolved before the worker sent READY=1");
    assert.equal(sup.state, "ready");
    assert.equal(ready.generation, 1);
  });
});

Deno.test("start() fails when READY=1 does not come within startTimeoutMs", async () => {
  const worker = pyWorker({ TW_START: "never" });
  await withSupervisor({ worker, startTimeoutMs: 300, restart: "no" }, async ({ sup, log }) => {
    const t0 = performance.now();
    await assert.rejects(sup.start(), /gave up \(timeout\)/);
    assert.ok(performance.now() - t0 >= 300);
    assert.equal(await sup.done, 1);
    assert.equal(sup.state, "failed");
    assert.match(log.text, /no READY=1 within 300 ms/);
    assert.match(log.text, /SIGTERM to pid \d+ \(start timeout\)/);
  });
});

Deno.test("EXTEND_TIMEOUT_USEC= while starting pushes the start timeout later", async () => {
  // The worker extends at once, then takes 1.5 s: well past the 0.8 s timeout, inside 3 s.
  const worker = pyWorker({ TW_START: "extend:3000000:1500" });
  await withSupervisor({ worker, startTimeoutMs: 800, restart: "no" }, async ({ sup, log }) => {
    await sup.start();
    assert.equal(sup.state, "ready");
    assert.doesNotMatch(log.text, /no READY=1/);
  });
});

Deno.test("NotifyAccess=main: READY=1 and fds from a child of the worker are ignored", async () => {
  const worker = pyWorker({ TW_START: "never" });
  await withSupervisor({ worker }, async ({ sup, port, log }) => {
    let isReady = false;
    const started = sup.start().then((r) => (isReady = true, r));
    const c = await LineClient.connect(port);
    const lines = ["READY=1", "FDSTORE=1", "FDNAME=child"];
    const sent = await c.request({ cmd: "notify", lines, attach: "conn", child: true, repeat: 2 });
    await c.request({ cmd: "barrier" });
    assert.equal(isReady, false);
    assert.equal(sup.state, "starting");
    assert.deepEqual(sup.status().storedFds, []);
    const refusals = log.grep(new RegExp(`messages from pid ${sent.child} are ignored`));
    assert.equal(refusals.length, 1, "the refusal is logged once per pid");
    assert.match(refusals[0], /only permitted for the main pid \d+ \(NotifyAccess=main\)/);
    assert.match(log.text, /closed 1 fd\(s\) from pid \d+: attached to a message from a pid/);
    await c.request({ cmd: "notify", lines: ["READY=1"] });
    const ready = await started;
    assert.notEqual(ready.pid, sent.child);
    await c.close();
  });
});

Deno.test("a worker that exits 0 before READY=1 failed (protocol)", async () => {
  const worker = pyWorker({ TW_START: "exit:0" });
  await withSupervisor({ worker, restart: "no" }, async ({ sup, log }) => {
    await assert.rejects(sup.start(), /gave up \(protocol\)/);
    assert.equal(await sup.done, 1);
    assert.match(log.text, /exited with status 0 before sending READY=1 \(protocol\)/);
  });
});

Deno.test("a worker that exits 5 before READY=1 failed with its status", async () => {
  const worker = pyWorker({ TW_START: "exit:5" });
  await withSupervisor({ worker, restart: "no" }, async ({ sup }) => {
    await assert.rejects(sup.start(), /gave up \(exit-code\)/);
    assert.equal(await sup.done, 5);
  });
});

Deno.test("a worker path that cannot be executed fails like 203/EXEC", async () => {
  const worker = { path: "/nonexistent/worker", args: [], env: {} };
  await withSupervisor({ worker, restart: "no" }, async ({ sup, log }) => {
    await assert.rejects(sup.start(), /gave up \(exit-code\)/);
    assert.equal(await sup.done, 203);
    assert.match(log.text, /cannot run \/nonexistent\/worker/);
  });
});

Deno.test("STATUS=, ERRNO= are kept; MAINPID= is refused; bad STATUS= bytes are ignored", async () => {
  const worker = pyWorker({ TW_STATUS: "héllo wörld" });
  await withSupervisor({ worker }, async ({ sup, port, log }) => {
    const ready = await sup.start();
    assert.equal(sup.status().status, "héllo wörld");
    const c = await LineClient.connect(port);
    await c.request({ cmd: "notify", lines: ["ERRNO=EPIPE", "MAINPID=1"] });
    // "STATUS=\xff" is not UTF-8: ignored, the previous text stays.
    await c.request({ cmd: "notify", raw: "5354415455533dff0a" });
    await c.request({ cmd: "notify", lines: ["STATUS=a\\b\\\\c"] });
    await c.request({ cmd: "barrier" });
    assert.equal(sup.statusErrno, 32);
    assert.equal(sup.status().pid, ready.pid);
    assert.match(log.text, /MAINPID=1 refused/);
    assert.match(log.text, /STATUS= is not UTF-8 clean/);
    // systemd's line splitting eats backslashes: "a\b\\c" is "ab\c".
    assert.equal(sup.status().status, "ab\\c");
    await c.close();
  });
});
