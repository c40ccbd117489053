/**
 * The HTTP engine over real sockets: `apprun serve` in a child process, raw clients writing
 * exact bytes. Keep-alive, pipelining, chunked both ways, streaming with backpressure,
 * 100-continue, HEAD, Date, Connection: close, HTTP/1.0, req.signal, handler failures.
 */
import assert from "node:assert/strict";
import { serveFixture } from "../_proc.ts";
import { exchange, GET, RawClient } from "../_net.ts";
import { serverSendQueue, waitUntilAnswered, waitUntilRead } from "../_proc_net.ts";
import { waitUntil } from "../_poll.ts";

Deno.test("serve: HTTP/1.1 semantics over a real socket", async (t) => {
  await using srv = await serveFixture("echo.ts");
  const port = srv.port;

  await t.step("keep-alive: several requests on one connection", async () => {
    using c = await RawClient.connect(port);
    for (let i = 0; i < 3; i++) {
      await c.write(GET("/"));
      const r = await c.readResponse();
      assert.equal(r.status, 200);
      assert.equal(r.body, "Hello, World!");
      assert.equal(r.headers.get("content-length"), "13");
      assert.equal(r.headers.get("connection"), null);
    }
  });

  await t.step("pipelining: responses come back in request order", async () => {
    using c = await RawClient.connect(port);
    await c.write(GET("/slow?ms=200") + GET("/pid") + GET("/slow?ms=10"));
    const a = await c.readResponse(), b = await c.readResponse(), d = await c.readResponse();
    assert.equal(a.body, "slept 200");
    assert.match(b.body, /^\d+$/);
    assert.equal(d.body, "slept 10");
  });

  await t.step("Date header is an IMF-fixdate close to now", async () => {
    const r = await exchange(port, GET("/"));
    const date = r.headers.get("date")!;
    assert.match(date, /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    assert.ok(Math.abs(Date.parse(date) - Date.now()) < 5000);
  });

  await t.step("chunked request body, sent byte by byte", async () => {
    using c = await RawClient.connect(port);
    const req = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
      "5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nTrailer: 1\r\n\r\n";
    for (const ch of req) await c.write(ch);
    const r = await c.readResponse();
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).body, "hello world");
  });

  await t.step("Content-Length body split across writes", async () => {
    using c = await RawClient.connect(port);
    await c.write("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n01234");
    await waitUntilRead([c]); // the server has the first half before the second is sent
    await c.write("56789");
    const r = await c.readResponse();
    assert.equal(JSON.parse(r.body).body, "0123456789");
  });

  await t.step("streaming response is chunked, one chunk per write", async () => {
    using c = await RawClient.connect(port);
    await c.write(GET("/stream?n=3&delay=20"));
    const r = await c.readResponse();
    assert.equal(r.headers.get("transfer-encoding"), "chunked");
    assert.equal(r.headers.get("content-length"), null);
    assert.equal(r.body, "chunk 0\nchunk 1\nchunk 2\n");
    assert.deepEqual(r.chunks, [8, 8, 8, 0]);
    // The connection is still usable after a chunked response.
    await c.write(GET("/"));
    assert.equal((await c.readResponse()).body, "Hello, World!");
  });

  await t.step("HTTP/1.0: close-delimited stream, keep-alive only when asked", async () => {
    const r = await exchange(port, "GET /stream?n=2&delay=5 HTTP/1.0\r\n\r\n");
    assert.equal(r.headers.get("transfer-encoding"), null);
    assert.equal(r.body, "chunk 0\nchunk 1\n");
    using c = await RawClient.connect(port);
    await c.write("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    const a = await c.readResponse();
    assert.equal(a.headers.get("connection"), "keep-alive");
    assert.equal(a.version, "HTTP/1.1");
    await c.write("GET / HTTP/1.0\r\n\r\n");
    const b = await c.readResponse();
    assert.equal(b.headers.get("connection"), "close");
    assert.equal(await c.waitForClose(), true);
  });

  await t.step("HEAD: the GET's Content-Length, no body", async () => {
    using c = await RawClient.connect(port);
    await c.write("HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
    const r = await c.readResponse(5000, { isHead: true });
    assert.equal(r.headers.get("content-length"), "13");
    await c.write(GET("/pid"));
    const next = await c.readResponse();
    assert.match(next.body, /^\d+$/, "no stray body bytes before the next response");
  });

  await t.step("204 and 304 carry no body and no length", async () => {
    for (const code of [204, 304]) {
      using c = await RawClient.connect(port);
      await c.write(GET(`/status?code=${code}`));
      const r = await c.readResponse();
      assert.equal(r.status, code);
      assert.equal(r.headers.get("content-length"), null);
      assert.equal(r.headers.get("transfer-encoding"), null);
      await c.write(GET("/"));
      assert.equal((await c.readResponse()).body, "Hello, World!");
    }
  });

  await t.step(
    "Connection: close from the client or the handler closes after the response",
    async () => {
      const a = await exchange(port, GET("/", "Connection: close\r\n"));
      assert.equal(a.headers.get("connection"), "close");
      assert.equal(a.isClosed, true);
      const b = await exchange(port, GET("/close"));
      assert.equal(b.body, "bye");
      assert.equal(b.isClosed, true);
    },
  );

  await t.step("Expect: 100-continue gets 100 before the final response", async () => {
    using c = await RawClient.connect(port);
    await c.write(
      "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
    );
    await c.readUntil((b) => new TextDecoder().decode(b).includes("\r\n\r\n"));
    assert.equal(c.take(25), "HTTP/1.1 100 Continue\r\n\r\n");
    await c.write("ping");
    const r = await c.readResponse();
    assert.equal(JSON.parse(r.body).body, "ping");
  });

  await t.step("Expect with an unknown expectation is 417", async () => {
    const r = await exchange(
      port,
      "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nExpect: teapot\r\n\r\nx",
    );
    assert.equal(r.status, 417);
    assert.equal(r.isClosed, true);
  });

  await t.step("large response with a slow reader: backpressure, nothing lost", async () => {
    using c = await RawClient.connect(port);
    await c.write(GET("/big?size=8388608"));
    // Not reading yet: the answer begins, and the rest waits behind full socket buffers.
    await waitUntilAnswered([c]);
    await waitUntil(() => serverSendQueue(c) > 0, "the server's send queue to back up");
    const r = await c.readResponse(20_000);
    assert.equal(r.body.length, 8388608);
    assert.ok(/^a+$/.test(r.body));
  });

  await t.step("large streamed upload is counted exactly", async () => {
    using c = await RawClient.connect(port);
    const size = 5 * 1024 * 1024;
    await c.write(`POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: ${size}\r\n\r\n`);
    const chunk = new Uint8Array(65536).fill(98);
    for (let sent = 0; sent < size; sent += chunk.length) await c.write(chunk);
    const r = await c.readResponse(20_000);
    assert.equal(r.body, String(size));
  });

  await t.step("info.remoteAddr and info.listener", async () => {
    using c = await RawClient.connect(port);
    await c.write("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    const r = JSON.parse((await c.readResponse()).body);
    const local = c.conn.localAddr as Deno.NetAddr;
    assert.deepEqual(r.remoteAddr, { transport: "tcp", hostname: "127.0.0.1", port: local.port });
    assert.equal(r.listener, "http");
    assert.equal(r.url, "http://t/echo");
  });

  await t.step("repeated Set-Cookie fields stay separate", async () => {
    const r = await exchange(port, GET("/headers"));
    assert.deepEqual(r.rawHeaders.filter(([k]) => k === "set-cookie").map(([, v]) => v), [
      "a=1",
      "b=2",
    ]);
  });

  await t.step("req.signal aborts when the client goes away", async () => {
    const id = crypto.randomUUID();
    const c = await RawClient.connect(port);
    await c.write(GET(`/abort?id=${id}`));
    await waitUntilRead([c]); // the request is in the handler
    c.close();
    let seen = "";
    await waitUntil(
      async () => (seen = (await exchange(port, GET(`/aborted?id=${id}`))).body) === "yes",
      () => `req.signal to abort (the handler says "${seen}")`,
      { timeoutMs: 2000, everyMs: 50 },
    );
  });

  await t.step(
    "a handler that throws, rejects or returns junk gets 500; the server stays up",
    async () => {
      for (const path of ["/throw", "/reject", "/not-a-response"]) {
        using c = await RawClient.connect(port);
        await c.write(GET(path));
        const r = await c.readResponse();
        assert.equal(r.status, 500, path);
        await c.write(GET("/"));
        assert.equal((await c.readResponse()).status, 200, `${path}: connection reusable`);
      }
      await srv.proc.waitFor(/handler failed for GET \/throw: handler exploded/);
    },
  );
});
