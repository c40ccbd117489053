/**
 * Graceful stop of a real `apprun serve` on SIGTERM (no handoff): the request in flight
 * finishes with `connection: close`, idle keep-alive connections are closed without a byte,
 * new connections are not served, exit 0; past `--drain-timeout` what is left is cut and the
 * process still exits 0 in time. See runtime/server.ts `shutdown()` and docs/design.md.
 */
import assert from "node:assert/strict";
import { serveFixture, tempDir } from "../_proc.ts";
import { GET, RawClient } from "../_net.ts";
import { waitUntilRead } from "../_proc_net.ts";
import { NotifyReceiver } from "./_util.ts";

Deno.test("serve: SIGTERM mid-request finishes it, closes idle connections, exits 0", async () => {
  await using srv = await serveFixture("echo.ts");
  const { proc, port } = srv;

  using idle = await RawClient.connect(port);
  await idle.write(GET("/"));
  assert.equal((await idle.readResponse()).status, 200);
  using partial = await RawClient.connect(port); // half a request head: not yet a request
  await partial.write("GET / HTTP/1.1\r\nHo");
  using slow = await RawClient.connect(port);
  const sent = Date.now();
  await slow.write(GET("/slow?ms=1500"));
  await waitUntilRead([partial, slow]); // the slow request is in the handler now

  proc.kill("SIGTERM");
  await proc.waitFor(/SIGTERM: stopping/);

  // Idle keep-alive connections are closed at once (FIN), without a response. A client
  // closes its end when it sees that; the server lingers until it does (or 2 s).
  assert.equal(await idle.waitForClose(1000), true, "idle connection closed promptly");
  assert.equal(idle.buffered.length, 0);
  idle.close();
  assert.equal(await partial.waitForClose(1000), true, "half-sent request closed promptly");
  partial.close();

  // A connection made now is not served (it waits in the backlog, then is dropped).
  let late: RawClient | null = null;
  try {
    late = await RawClient.connect(port);
    await late.write(GET("/"));
  } catch {
    // Refused: the listener is gone, which is fine too.
  }

  // The request in flight completes, told that the connection closes after it.
  const r = await slow.readResponse(5000);
  assert.equal(r.status, 200);
  assert.equal(r.body, "slept 1500");
  assert.equal(r.headers.get("connection"), "close");
  assert.equal(await slow.waitForClose(2000), true);
  slow.close();

  const st = await proc.wait();
  const elapsed = Date.now() - sent;
  assert.equal(st.code, 0, proc.log);
  // After the request's 1.5 s, and soon after (idle connections do not hold the exit up).
  assert.ok(elapsed >= 1500 && elapsed < 2300, `exited ${elapsed} ms after the request`);
  assert.match(proc.log, /stopped/);
  if (late !== null) {
    try {
      await late.readUntil((b) => b.length > 0, 2000);
      assert.equal(late.buffered.length, 0, "a connection made while draining got no answer");
    } finally {
      late.close();
    }
  }
});

Deno.test("serve: SIGTERM with nothing in flight exits 0 at once", async () => {
  await using srv = await serveFixture("echo.ts");
  using idle = await RawClient.connect(srv.port);
  await idle.write(GET("/"));
  await idle.readResponse();
  const t0 = Date.now();
  srv.proc.kill("SIGTERM");
  assert.equal(await idle.waitForClose(1000), true);
  idle.close();
  assert.equal((await srv.proc.wait()).code, 0);
  assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
});

Deno.test("serve: SIGINT stops gracefully too", async () => {
  await using srv = await serveFixture("echo.ts");
  using slow = await RawClient.connect(srv.port);
  await slow.write(GET("/slow?ms=500"));
  await waitUntilRead([slow]);
  srv.proc.kill("SIGINT");
  const r = await slow.readResponse();
  assert.equal(r.body, "slept 500");
  assert.equal(r.headers.get("connection"), "close");
  slow.close();
  assert.equal((await srv.proc.wait()).code, 0);
  assert.match(srv.proc.log, /SIGINT: stopping/);
});

Deno.test("serve: past --drain-timeout the request left gets 503 + close, exit 0", async () => {
  // docs/design.md: "deadline --drain-timeout, then 503 + close" (Server.shutdown: abandon(503)).
  await using srv = await serveFixture("echo.ts", ["--drain-timeout", "1s"]);
  using slow = await RawClient.connect(srv.port);
  await slow.write(GET("/slow?ms=10000"));
  await waitUntilRead([slow]);
  const t0 = Date.now();
  srv.proc.kill("SIGTERM");
  const r = await slow.readResponse(5000);
  const answeredAfter = Date.now() - t0;
  assert.equal(r.status, 503);
  assert.equal(r.headers.get("connection"), "close");
  assert.ok(
    answeredAfter >= 900,
    `answered ${answeredAfter} ms after SIGTERM: before the deadline`,
  );
  assert.equal(await slow.waitForClose(1000), true, "then the connection is closed");
  slow.close();
  const st = await srv.proc.wait();
  const elapsed = Date.now() - t0;
  assert.equal(st.code, 0, srv.proc.log);
  assert.ok(elapsed < 1000 + 1000, `exited ${elapsed} ms after SIGTERM (drain timeout 1 s)`);
});

Deno.test("serve: past --drain-timeout a client that never closes is cut; exit in time", async () => {
  // A response already streaming cannot become a 503: it is cut. And a client that ignores
  // the FIN must not hold the process: drain timeout + 1 s of lingering at most.
  await using srv = await serveFixture("echo.ts", ["--drain-timeout", "1s"]);
  using streaming = await RawClient.connect(srv.port);
  await streaming.write(GET("/stream?n=100&delay=100"));
  await streaming.readUntil((b) => new TextDecoder().decode(b).includes("chunk 0"));
  const t0 = Date.now();
  srv.proc.kill("SIGTERM");
  const st = await srv.proc.wait();
  const elapsed = Date.now() - t0;
  assert.equal(st.code, 0, srv.proc.log);
  assert.ok(elapsed >= 900 && elapsed < 1000 + 1000 + 1000, `exited ${elapsed} ms after SIGTERM`);
  const rest = await streaming.readToEnd(2000);
  assert.ok(!rest.includes("chunk 99"), "the stream was cut, not finished");
  assert.ok(!rest.endsWith("0\r\n\r\n"), "no last-chunk: the client can tell it was cut");
});

Deno.test("serve: SIGTERM under a manager that ignores FDSTORE (systemd 252) still stops cleanly", async () => {
  // systemd 252 sets no $FDSTORE, so apprun cannot know the store is off and hands off; a unit
  // without FileDescriptorStoreMax= drops what it stores. The receiver here does the same
  // (closes stored fds, answers BARRIER=1 by closing its pipe). Clients must see what a
  // graceful stop gives them: the request in flight finished, idle connections closed, exit 0.
  await using dir = await tempDir();
  await using rx = new NotifyReceiver(`${dir.path}/notify`);
  await using srv = await serveFixture("echo.ts", [], { env: { NOTIFY_SOCKET: rx.address } });
  using idle = await RawClient.connect(srv.port);
  await idle.write(GET("/"));
  assert.equal((await idle.readResponse()).status, 200);
  using slow = await RawClient.connect(srv.port);
  await slow.write(GET("/slow?ms=800"));
  await waitUntilRead([slow]);
  const t0 = Date.now();
  srv.proc.kill("SIGTERM");
  await rx.waitFor((m) => m.lines.includes("STOPPING=1"));
  const r = await slow.readResponse(5000);
  assert.equal(r.status, 200);
  assert.equal(r.body, "slept 800");
  assert.equal(await slow.waitForClose(2000), true, "closed after its response");
  slow.close();
  assert.equal(await idle.waitForClose(2000), true, "idle connection closed");
  assert.equal(idle.buffered.length, 0);
  idle.close();
  assert.equal((await srv.proc.wait()).code, 0, srv.proc.log);
  assert.ok(Date.now() - t0 < 2500, `exited ${Date.now() - t0} ms after SIGTERM`);
});
