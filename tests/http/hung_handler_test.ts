/**
 * A handler that never answers: its connection is closed a grace period (the idle timeout)
 * after its client left, so no fd stays in CLOSE_WAIT; and with `--handler-timeout` the client
 * gets 503 at the deadline and the handler's `req.signal` aborts.
 */
import assert from "node:assert/strict";
import { serveFixture } from "../_proc.ts";
import { RawClient } from "../_net.ts";
import { sleep } from "../_poll.ts";

function openFds(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}

async function get(port: number, path: string) {
  using c = await RawClient.connect(port);
  await c.write(`GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`);
  return await c.readResponse();
}

Deno.test("HttpConnection closes a hung handler's fd a grace period after its client left", async () => {
  await using srv = await serveFixture("hang.ts", ["--idle-timeout", "1s"]);
  assert.equal((await get(srv.port, "/")).status, 200);
  await sleep(200);
  const before = openFds(srv.proc.pid);
  const n = 30;
  const clients: RawClient[] = [];
  for (let i = 0; i < n; i++) {
    const c = await RawClient.connect(srv.port);
    await c.write(`GET /hang?id=${i} HTTP/1.1\r\nHost: t\r\n\r\n`);
    clients.push(c);
  }
  await sleep(300);
  assert.ok(openFds(srv.proc.pid) >= before + n, "the hung requests hold their fds");
  for (const c of clients) c.close();
  await sleep(300);
  assert.equal((await get(srv.port, "/aborted?id=0")).body, "yes", "req.signal aborted");
  await sleep(2200);
  const left = openFds(srv.proc.pid) - before;
  assert.ok(left <= 0, `${left} fds still open 2.5 s after their clients left`);
});

Deno.test("--handler-timeout answers 503 when the handler has not answered, and aborts it", async () => {
  await using srv = await serveFixture("hang.ts", ["--handler-timeout", "1s"]);
  using c = await RawClient.connect(srv.port);
  const t0 = Date.now();
  await c.write("GET /hang?id=t HTTP/1.1\r\nHost: t\r\n\r\n");
  const r = await c.readResponse(5000);
  const took = Date.now() - t0;
  assert.equal(r.status, 503);
  assert.equal(r.headers.get("connection"), "close");
  assert.ok(took >= 900 && took < 3000, `503 after ${took} ms`);
  assert.equal(await c.waitForClose(3000), true);
  assert.equal((await get(srv.port, "/aborted?id=t")).body, "yes", "req.signal aborted");
  await srv.proc.waitFor(/handler did not answer GET \/hang\?id=t within 1000 ms: 503/);
  // A response that started in time is not cut off, however long it streams.
  const streamed = await get(srv.port, "/stream?n=4&delay=500");
  assert.equal(streamed.status, 200);
  assert.equal(streamed.body, "chunk 0\nchunk 1\nchunk 2\nchunk 3\n");
});
