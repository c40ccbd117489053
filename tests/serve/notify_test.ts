/**
 * sd_notify(3) from a real `apprun serve`, received on a real NOTIFY_SOCKET (a datagram socket
 * this test binds, by path and by abstract name, with SO_PASSCRED so each message carries the
 * sender's pid as systemd's NotifyAccess=main checks it): READY=1 only once the listener
 * accepts and the handler is loaded, STATUS= with live counts, STOPPING=1 on SIGTERM,
 * EXTEND_TIMEOUT_USEC= while draining, WATCHDOG=1 at half of WATCHDOG_USEC (and not when
 * WATCHDOG_PID names another process).
 */
import assert from "node:assert/strict";
import { APPRUN, FIXTURES, type Proc, spawn, tempDir } from "../_proc.ts";
import { exchange, freePort, GET, RawClient } from "../_net.ts";
import { sleep } from "../_poll.ts";
import { NotifyReceiver } from "./_util.ts";

const isReady = (m: { lines: string[] }) => m.lines.includes("READY=1");

/** The counts of a `STATUS=` line, by name (other fields may come and go). */
function statusCounts(lines: string[]) {
  const line = lines.find((l) => l.startsWith("STATUS="));
  assert.ok(line, `no STATUS= in ${JSON.stringify(lines)}`);
  const count = (re: RegExp) => {
    const m = re.exec(line);
    assert.ok(m, `${re} not in ${line}`);
    return Number(m[1]);
  };
  return {
    state: /^STATUS=(\w+):/.exec(line)?.[1],
    connections: count(/\b(\d+) connections\b/),
    busy: count(/\((\d+) busy\)/),
    requests: count(/\b(\d+) requests\b/),
  };
}

/** Starts `apprun serve FIXTURE --port PORT` with NOTIFY_SOCKET set; `wrap` runs it via sh. */
function serveNotified(
  fixture: string,
  notifySocket: string,
  { port = freePort(), env = {}, wrap = "" }: {
    port?: number;
    env?: Record<string, string>;
    wrap?: string;
  } = {},
): { proc: Proc; port: number } {
  const cmd = [
    ...[APPRUN, "serve", `${FIXTURES}/${fixture}`],
    ...["--port", String(port), "--host", "127.0.0.1"],
  ];
  const proc = wrap
    ? spawn("sh", ["-c", `${wrap} exec "$0" "$@"`, ...cmd], {
      env: { NOTIFY_SOCKET: notifySocket, ...env },
    })
    : spawn(cmd[0], cmd.slice(1), { env: { NOTIFY_SOCKET: notifySocket, ...env } });
  return { proc, port };
}

for (const form of ["path", "abstract"] as const) {
  Deno.test(`sd_notify (${form} socket): READY=1 once serving, STOPPING=1 on SIGTERM`, async () => {
    await using dir = await tempDir();
    const address = form === "path" ? `${dir.path}/notify` : `@apprun-test-${crypto.randomUUID()}`;
    await using rx = new NotifyReceiver(address);
    // slow_load.ts takes 800 ms to import: READY=1 must wait for it.
    const { proc, port } = serveNotified("slow_load.ts", address);
    await using _proc = proc;

    const ready = await rx.waitFor(isReady);
    // Connect the moment READY=1 arrives: the listener must accept, the handler answer.
    {
      using c = await RawClient.connect(port);
      await c.write(GET("/"));
      const r = await c.readResponse(1000);
      assert.equal(r.status, 200);
      const { loadedAt } = JSON.parse(r.body);
      assert.ok(ready.at >= loadedAt, `READY=1 at ${ready.at} before the handler loaded`);
    }
    assert.equal(rx.messages[0], ready, "nothing is sent before READY=1");
    assert.equal(ready.pid, proc.pid, "sent by the main pid (NotifyAccess=main)");
    assert.equal(ready.lines[0], "READY=1");
    assert.deepEqual(statusCounts(ready.lines), {
      state: "Serving",
      connections: 0,
      busy: 0,
      requests: 0,
    });

    const before = rx.messages.length;
    proc.kill("SIGTERM");
    const stopping = await rx.waitFor((m) => m.lines.includes("STOPPING=1"), { from: before });
    assert.equal(stopping.pid, proc.pid);
    const st = await proc.wait();
    assert.equal(st.code, 0, proc.log);
    rx.flush(); // take whatever was sent just before exit
    const after = rx.messages.slice(rx.messages.indexOf(stopping) + 1);
    assert.ok(!after.some(isReady), "no READY=1 after STOPPING=1");
    assert.equal(rx.having("READY=1").length, 1, "READY=1 exactly once");
  });
}

Deno.test("sd_notify: STATUS= reports live connection counts; EXTEND_TIMEOUT_USEC= while draining", async () => {
  await using dir = await tempDir();
  await using rx = new NotifyReceiver(`${dir.path}/notify`);
  // FDSTORE=0 (systemd ≥ 254: FileDescriptorStoreMax=0): no handoff, a plain graceful stop.
  const { proc, port } = serveNotified("echo.ts", rx.address, { env: { FDSTORE: "0" } });
  await using _proc = proc;
  await rx.waitFor(isReady);

  using idle = await RawClient.connect(port);
  for (let i = 0; i < 3; i++) {
    await idle.write(GET("/"));
    assert.equal((await idle.readResponse()).status, 200);
  }
  using busy = await RawClient.connect(port);
  await busy.write(GET("/slow?ms=3000"));

  // The status tick (every 2 s) reports what it sees, and only when it changed.
  const status = await rx.waitFor(
    (m) => !isReady(m) && m.lines.some((l) => l.startsWith("STATUS=")),
    { timeoutMs: 5000 },
  );
  const counts = statusCounts(status.lines);
  assert.equal(counts.state, "Serving");
  assert.equal(counts.connections, 2);
  assert.equal(counts.busy, 1);

  // SIGTERM with a request in flight: STOPPING=1, then more time asked for while draining.
  const before = rx.messages.length;
  proc.kill("SIGTERM");
  await rx.waitFor((m) => m.lines.includes("STOPPING=1"), { from: before });
  const extend = await rx.waitFor(
    (m) => m.lines.some((l) => l.startsWith("EXTEND_TIMEOUT_USEC=")),
    {
      from: before,
    },
  );
  const usec = Number(extend.lines[0].split("=")[1]);
  assert.ok(usec >= 5_000_000, `EXTEND_TIMEOUT_USEC=${usec} covers the drain`);
  const r = await busy.readResponse();
  assert.equal(r.body, "slept 3000");
  assert.equal(r.headers.get("connection"), "close");
  busy.close();
  assert.equal((await proc.wait()).code, 0);
  assert.match(proc.log, /SIGTERM: stopping/);
});

Deno.test({
  name: "sd_notify: STATUS= counts requests served on connections still open",
  // Regression test for a fixed bug: runtime/server.ts adds conn.requests to #served only in #onClosed, so requests on
  // keep-alive connections that are still open are not counted ("0 requests" for a client
  // that keeps its connection, e.g. a reverse proxy).
  fn: async () => {
    await using dir = await tempDir();
    await using rx = new NotifyReceiver(`${dir.path}/notify`);
    const { proc, port } = serveNotified("echo.ts", rx.address);
    await using _proc = proc;
    await rx.waitFor(isReady);
    using c = await RawClient.connect(port);
    for (let i = 0; i < 3; i++) {
      await c.write(GET("/"));
      assert.equal((await c.readResponse()).status, 200);
    }
    const status = await rx.waitFor((m) => !isReady(m) && m.lines[0]?.startsWith("STATUS="), {
      timeoutMs: 5000,
    });
    const counts = statusCounts(status.lines);
    assert.equal(counts.connections, 1);
    assert.equal(counts.requests, 3);
  },
});

Deno.test("sd_notify: WATCHDOG=1 at half of WATCHDOG_USEC; the variables are unset", async () => {
  await using dir = await tempDir();
  await using rx = new NotifyReceiver(`${dir.path}/notify`);
  const { proc, port } = serveNotified("probe.ts", rx.address, {
    env: { WATCHDOG_USEC: "200000" },
  });
  await using _proc = proc;
  const ready = await rx.waitFor(isReady);
  await sleep(1100); // a window of a second in which to count the pings
  const pings = rx.having("WATCHDOG=1").filter((m) => m.at >= ready.at && m.at < ready.at + 1000);
  assert.ok(pings.length >= 7 && pings.length <= 13, `${pings.length} pings in 1 s, want ~10`);
  const gaps = pings.slice(1).map((m, i) => m.at - pings[i].at).sort((a, b) => a - b);
  const median = gaps[gaps.length >> 1];
  assert.ok(median >= 70 && median <= 140, `median gap ${median} ms, want ~100`);
  assert.ok(pings.every((m) => m.pid === proc.pid));
  for (const name of ["WATCHDOG_USEC", "WATCHDOG_PID"]) {
    const r = await exchange(port, GET(`/env?name=${name}`));
    assert.equal(JSON.parse(r.body), null, `${name} is unset in the server`);
  }
});

Deno.test("sd_notify: WATCHDOG_PID = our pid pings; another pid does not", async (t) => {
  await using dir = await tempDir();
  for (
    const [label, wrap, isExpected] of [
      // $$ of the shell is the server's pid: sh execs bin/apprun, which execs Deno.
      ["our pid", "WATCHDOG_PID=$$", true],
      ["another pid", `WATCHDOG_PID=${Deno.pid}`, false],
    ] as const
  ) {
    await t.step(label, async () => {
      await using rx = new NotifyReceiver(`${dir.path}/notify-${isExpected}`);
      const { proc } = serveNotified("echo.ts", rx.address, {
        env: { WATCHDOG_USEC: "200000" },
        wrap,
      });
      await using _proc = proc;
      const ready = await rx.waitFor(isReady);
      assert.equal(ready.pid, proc.pid);
      await sleep(500); // a window in which to count the pings
      const pings = rx.having("WATCHDOG=1");
      if (isExpected) assert.ok(pings.length >= 3, `${pings.length} pings in 500 ms`);
      else assert.equal(pings.length, 0);
    });
  }
});

Deno.test("sd_notify: no READY=1 when the handler fails to load", async () => {
  await using dir = await tempDir();
  await using rx = new NotifyReceiver(`${dir.path}/notify`);
  const { proc } = serveNotified("does_not_exist.ts", rx.address);
  await using _proc = proc;
  assert.equal((await proc.wait()).code, 1);
  rx.flush();
  assert.deepEqual(rx.having("READY=1"), []);
});

Deno.test("sd_notify: a NOTIFY_SOCKET nobody listens on is logged, not fatal", async () => {
  await using dir = await tempDir();
  const { proc, port } = serveNotified("echo.ts", `${dir.path}/nobody-here`);
  await using _proc = proc;
  await proc.waitFor(/listening on/);
  await proc.waitFor(/sd_notify failed/);
  assert.equal((await exchange(port, GET("/"))).status, 200);
  proc.kill("SIGTERM");
  assert.equal((await proc.wait()).code, 0);
});
