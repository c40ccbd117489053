/**
 * Each defence of the HTTP engine over a real socket: exact bytes in, the right 4xx/5xx out and
 * the connection closed; never a crash. Limits are set small on the command line.
 */
import assert from "node:assert/strict";
import { serveFixture } from "../_proc.ts";
import { exchange, RawClient } from "../_net.ts";
import { openConnections, waitUntilRead } from "../_proc_net.ts";
import { sleep, waitUntil } from "../_poll.ts";

const LIMITS = [
  "--max-line",
  "256",
  "--max-head",
  "1k",
  "--max-headers",
  "10",
  "--max-body",
  "1k",
  "--header-timeout",
  "1s",
  "--body-timeout",
  "1s",
  "--idle-timeout",
  "2s",
];

/** Sends `bytes`, expects `status` and a closed connection. */
async function refused(port: number, bytes: string, status: number) {
  using c = await RawClient.connect(port);
  await c.write(bytes);
  const r = await c.readResponse();
  assert.equal(r.status, status, `${JSON.stringify(bytes.slice(0, 80))} → ${r.status}`);
  assert.equal(r.headers.get("connection"), "close");
  assert.equal(await c.waitForClose(3000), true, "connection closed after the refusal");
}

Deno.test("serve: every defence answers with its status and closes", async (t) => {
  await using srv = await serveFixture("echo.ts", LIMITS);
  const port = srv.port;
  const H = "Host: t\r\n";

  await t.step("request smuggling: CL+TE, duplicate and conflicting Content-Length", async () => {
    await refused(
      port,
      `POST /echo HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      400,
    );
    await refused(
      port,
      `POST /echo HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n`,
      400,
    );
    await refused(
      port,
      `POST /echo HTTP/1.1\r\n${H}Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde`,
      400,
    );
    await refused(
      port,
      `POST /echo HTTP/1.1\r\n${H}Content-Length: 4\r\nContent-Length: 4\r\n\r\nabcd`,
      400,
    );
    await refused(port, `POST /echo HTTP/1.1\r\n${H}Content-Length: 1_0\r\n\r\n`, 400);
    await refused(port, `POST /echo HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n\r\n`, 400);
    await refused(port, `POST /echo HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n`, 501);
    await refused(port, `POST /echo HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n`, 400);
  });

  await t.step("bad chunk sizes and chunk framing", async () => {
    const pre = `POST /echo HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n`;
    await refused(port, pre + "zz\r\nhello\r\n0\r\n\r\n", 400);
    await refused(port, pre + "-5\r\nhello\r\n0\r\n\r\n", 400);
    await refused(port, pre + "5\r\nhelloXX0\r\n\r\n", 400);
    await refused(port, pre + "fffffffffffffffffff\r\n", 400);
    await refused(port, pre + "5\nhello\r\n0\r\n\r\n", 400);
  });

  await t.step("obs-fold, invalid tokens and bytes", async () => {
    await refused(port, `GET / HTTP/1.1\r\n${H}X-A: a\r\n  folded\r\n\r\n`, 400);
    await refused(port, `GET / HTTP/1.1\r\n${H}X A: a\r\n\r\n`, 400);
    await refused(port, `GET / HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`, 400);
    await refused(port, `GET / HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n`, 400);
    await refused(port, `G(T / HTTP/1.1\r\n${H}\r\n`, 400);
    await refused(port, `GET /\x7f HTTP/1.1\r\n${H}\r\n`, 400);
    await refused(port, `GET / HTTP/1.1\n${H}\n`, 400);
    await refused(port, `GET / HTTP/3.0\r\n${H}\r\n`, 505);
    await refused(port, `GET / HTTP/1.1\r\n\r\n`, 400);
    await refused(port, `GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`, 400);
  });

  await t.step("over-long request line (414), head (431), too many fields (431)", async () => {
    await refused(port, `GET /${"a".repeat(400)} HTTP/1.1\r\n${H}\r\n`, 414);
    await refused(port, `GET / HTTP/1.1\r\n${H}X-Big: ${"b".repeat(2000)}\r\n\r\n`, 431);
    let many = "";
    for (let i = 0; i < 11; i++) many += `X-${i}: v\r\n`;
    await refused(port, `GET / HTTP/1.1\r\n${H}${many}\r\n`, 431);
  });

  await t.step(
    "body over the limit: 413 from Content-Length, and from a chunked body",
    async () => {
      await refused(port, `POST /echo HTTP/1.1\r\n${H}Content-Length: 5000\r\n\r\n`, 413);
      const big = "400\r\n" + "x".repeat(1024) + "\r\n" + "10\r\n" + "y".repeat(16) +
        "\r\n0\r\n\r\n";
      await refused(
        port,
        `POST /count HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${big}`,
        413,
      );
    },
  );

  await t.step("slowloris: a head that never ends gets 408 after the header timeout", async () => {
    using c = await RawClient.connect(port);
    const t0 = Date.now();
    await c.write("GET / HTTP/1.1\r\nHost: t\r\n");
    for (let i = 0; i < 4; i++) {
      await sleep(150); // pacing: the head keeps trickling in, slower than the timeout
      await c.write(`X-${i}: a\r\n`);
    }
    const r = await c.readResponse(5000);
    assert.equal(r.status, 408);
    assert.ok(Date.now() - t0 < 3000, "refused near the 1 s header timeout");
    assert.equal(await c.waitForClose(3000), true);
  });

  await t.step("a body that stalls gets 408 after the body timeout", async () => {
    using c = await RawClient.connect(port);
    await c.write(`POST /count HTTP/1.1\r\n${H}Content-Length: 100\r\n\r\nonly ten b`);
    const r = await c.readResponse(5000);
    assert.equal(r.status, 408);
    assert.equal(await c.waitForClose(3000), true);
  });

  await t.step("an idle keep-alive connection is closed after the idle timeout", async () => {
    using c = await RawClient.connect(port);
    await c.write(`GET / HTTP/1.1\r\n${H}\r\n`);
    assert.equal((await c.readResponse()).status, 200);
    const t0 = Date.now();
    assert.equal(await c.waitForClose(5000), true);
    const waited = Date.now() - t0;
    assert.ok(waited > 1500 && waited < 4000, `closed after ${waited} ms`);
  });

  await t.step("a client that closes mid-head or mid-body costs nothing", async () => {
    for (const bytes of ["GET / HT", `POST /count HTTP/1.1\r\n${H}Content-Length: 50\r\n\r\nabc`]) {
      const c = await RawClient.connect(port);
      await c.write(bytes);
      await waitUntilRead([c]); // mid-head or mid-body in the server's parser
      c.close();
    }
    // The server lets go of both (nothing left open on its side), and serves on.
    await waitUntil(
      () => openConnections(port) === 0,
      () => `the server to close its side (still open: ${openConnections(port)})`,
    );
    const r = await exchange(port, `GET / HTTP/1.1\r\n${H}\r\n`);
    assert.equal(r.status, 200);
  });

  await t.step("a pipelined valid request after a refused one is not served", async () => {
    using c = await RawClient.connect(port);
    await c.write(`GET / HTTP/1.1\r\n${H}X: a\x01\r\n\r\nGET /pid HTTP/1.1\r\n${H}\r\n`);
    const r = await c.readResponse();
    assert.equal(r.status, 400);
    assert.equal(await c.waitForClose(3000), true);
  });

  assert.match(srv.proc.log, /refused: bad-header/);
});
