/**
 * What a connection keeps after a burst: measured in the server process (`Deno.memoryUsage()`
 * after a full GC, or RSS from /proc) while real clients hold their connections open.
 */
import assert from "node:assert/strict";
import { serveFixture } from "../_proc.ts";
import { RawClient } from "../_net.ts";
import { sleep } from "../_poll.ts";

const GC_ENV = { DENO_V8_FLAGS: "--expose-gc" };

/** Bytes held outside the JS heap (ArrayBuffers) by the server, after a full GC. */
async function externalBytes(port: number): Promise<number> {
  using c = await RawClient.connect(port);
  await c.write("GET /memory HTTP/1.1\r\nHost: t\r\n\r\n");
  const r = await c.readResponse();
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body).external;
}

Deno.test("Inbound releases the buffer of a large head once it is consumed", async () => {
  await using srv = await serveFixture("memory.ts", ["--max-head", "1m"], { env: GC_ENV });
  const field = `X-Big: ${"b".repeat(900 * 1024)}\r\n`;
  /** A 900 KiB head sent in two parts, so that the connection must buffer it. */
  async function bigHead(c: RawClient): Promise<void> {
    await c.write(`GET / HTTP/1.1\r\nHost: t\r\n${field.slice(0, 1000)}`);
    await sleep(5);
    await c.write(`${field.slice(1000)}\r\n`);
    assert.equal((await c.readResponse()).status, 200);
  }
  const clients: RawClient[] = [];
  /** Opens `n` more connections, each left idle after a big head; returns what is held. */
  async function openIdle(n: number): Promise<number> {
    for (let i = 0; i < n; i++) {
      const c = await RawClient.connect(srv.port);
      clients.push(c);
      await bigHead(c);
    }
    return await externalBytes(srv.port);
  }
  try {
    // The difference between two counts of idle connections is what each one keeps; what the
    // process allocates once (and the GC leaves) cancels out.
    const first = await openIdle(20);
    const n = 40;
    const perConnection = (await openIdle(n) - first) / n;
    assert.ok(perConnection < 16 * 1024, `an idle connection holds ${perConnection} bytes`);
  } finally {
    for (const c of clients) c.close();
  }
});

Deno.test("HttpConnection stops parsing pipelined requests while its output is queued", async () => {
  await using srv = await serveFixture("memory.ts", [], { env: GC_ENV });
  const before = await externalBytes(srv.port);
  const n = 150;
  const size = 1 << 20;
  using c = await RawClient.connect(srv.port);
  // 150 pipelined requests for 1 MiB each, and a client that reads none of it (yet).
  await c.write(`GET /big?size=${size} HTTP/1.1\r\nHost: t\r\n\r\n`.repeat(n));
  await sleep(1000);
  const held = await externalBytes(srv.port) - before;
  assert.ok(held < 16 << 20, `the server holds ${(held / (1 << 20)).toFixed(1)} MiB of output`);
  // Reading resumes the answers, in order, all of them.
  let answered = 0;
  while (answered < n) {
    const r = await c.readResponse(10_000);
    assert.equal(r.status, 200);
    assert.equal(r.body.length, size);
    answered++;
  }
});
