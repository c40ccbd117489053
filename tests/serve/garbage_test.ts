/**
 * Malformed input never takes a real `apprun serve` down: 200 seeded garbage payloads, each
 * on its own connection (random bytes, printable noise, mutated valid requests, bodies with
 * lying framing, oversized lines; sent whole, byte-split, half-closed or abandoned), then a
 * valid request is still answered by the same process, which then stops cleanly. Replay a
 * failure with APPRUN_TEST_SEED=<seed>.
 */
import assert from "node:assert/strict";
import { serveFixture } from "../_proc.ts";
import { GET, latin1, RawClient } from "../_net.ts";
import { openConnections } from "../_proc_net.ts";
import { waitUntil } from "../_poll.ts";
import { prng } from "./_util.ts";

const SEED = Number(Deno.env.get("APPRUN_TEST_SEED") ?? 0x5eed);
const COUNT = 200;
const PARALLEL = 20;

const enc = new TextEncoder();

const VALID = [
  GET("/echo"),
  "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
  "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
  "GET / HTTP/1.0\r\n\r\n",
];

/** One payload and how to send it, from the PRNG. */
function makeCase(rand: () => number) {
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]) => xs[int(xs.length)];
  const bytes = (n: number, lo = 0, hi = 256) =>
    Uint8Array.from({ length: n }, () => lo + int(hi - lo));
  let payload: Uint8Array;
  const kind = pick(
    [
      "random",
      "printable",
      "mutated",
      "head+noise",
      "framing",
      "long",
    ] as const,
  );
  switch (kind) {
    case "random":
      payload = bytes(1 + int(2048));
      break;
    case "printable": {
      const s = Array.from(
        { length: 1 + int(1024) },
        () =>
          pick([..."GET POST HTTP/1.1 :\r\n\t Host Content-Length Transfer-Encoding chunked 0123"]),
      )
        .join("");
      payload = enc.encode(s);
      break;
    }
    case "mutated": {
      payload = enc.encode(pick(VALID));
      for (let i = 0, n = 1 + int(6); i < n; i++) payload[int(payload.length)] = int(256);
      break;
    }
    case "head+noise":
      payload = new Uint8Array([
        ...enc.encode(`${pick(["GET", "POST", "G\0T", "PUT"])} /${int(1e6)} HTTP/1.1\r\n`),
        ...bytes(1 + int(512), 0, 256),
        ...enc.encode(pick(["", "\r\n", "\r\n\r\n"])),
      ]);
      break;
    case "framing":
      payload = enc.encode(pick([
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n",
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\n folded: value\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n",
        "GET / HTTP/9.9\r\nHost: t\r\n\r\n",
        "GET /\0 HTTP/1.1\r\nHost: t\r\n\r\n",
        "\r\n\r\n\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nshort",
      ]));
      break;
    case "long":
      payload = enc.encode(
        pick([
          `GET /${"a".repeat(20_000)} HTTP/1.1\r\nHost: t\r\n\r\n`,
          `GET / HTTP/1.1\r\nHost: t\r\nX: ${"b".repeat(100_000)}\r\n\r\n`,
          `GET / HTTP/1.1\r\n${"X-A: 1\r\n".repeat(500)}\r\n`,
        ]),
      );
      break;
  }
  const how = pick(["whole", "split", "half-close", "abandon"] as const);
  return { kind, how, payload };
}

/** Sends one case; returns the status line received, or null when nothing came back. */
async function send(port: number, c: ReturnType<typeof makeCase>): Promise<string | null> {
  using client = await RawClient.connect(port);
  try {
    if (c.how === "split") {
      for (let i = 0; i < c.payload.length; i += 7) {
        await client.write(c.payload.subarray(i, i + 7));
      }
    } else await client.write(c.payload);
    if (c.how === "abandon") return null;
    if (c.how === "half-close") await client.conn.closeWrite();
  } catch {
    return null; // the server closed on us mid-write: allowed for garbage
  }
  try {
    // A complete request is answered; garbage gets a 4xx and a close; an incomplete head
    // waits for more (header timeout): 1 s is enough to see whatever comes.
    await client.readUntil((b) => b.includes(10), 1000);
  } catch {
    // Nothing yet: the server is waiting for the rest of the request.
  }
  const text = latin1(client.buffered);
  return text === "" ? null : text.split("\r\n")[0];
}

Deno.test(`serve: 200 garbage payloads (seed ${SEED}) never take the process down`, async () => {
  await using srv = await serveFixture("echo.ts", [], { env: { APPRUN_LOG: "info" } });
  const rand = prng(SEED);
  const cases = Array.from({ length: COUNT }, () => makeCase(rand));
  const statuses = new Map<string, number>();
  for (let i = 0; i < cases.length; i += PARALLEL) {
    const lines = await Promise.all(cases.slice(i, i + PARALLEL).map((c) => send(srv.port, c)));
    lines.forEach((line, j) => {
      if (line === null) return;
      const m = /^HTTP\/1\.[01] (\d{3}) /.exec(line);
      const c = cases[i + j];
      assert.ok(
        m,
        `case ${i + j} (${c.kind}/${c.how}): not a status line: ${JSON.stringify(line)}`,
      );
      assert.notEqual(m[1], "500", `case ${i + j} (${c.kind}): the server itself failed`);
      statuses.set(m[1], (statuses.get(m[1]) ?? 0) + 1);
    });
  }
  assert.ok((statuses.get("400") ?? 0) >= 20, `few 400s: ${JSON.stringify([...statuses])}`);

  // Still the same process, still serving.
  using c = await RawClient.connect(srv.port);
  await c.write(GET("/pid"));
  const r = await c.readResponse();
  assert.equal(r.status, 200);
  assert.equal(r.body, String(srv.proc.pid));
  c.close();
  assert.doesNotMatch(srv.proc.log, /event loop failed|event handler failed|Uncaught|panic/);
  srv.proc.kill("SIGTERM");
  assert.equal((await srv.proc.wait()).code, 0, srv.proc.log);
  console.log(`statuses: ${JSON.stringify(Object.fromEntries(statuses))}`);
});

Deno.test({
  name: "serve: FIN during the handler with half a next request left: closed after the response",
  // BUG (found by the garbage test, seed 0x5eed: a POST /echo whose Content-Length name was
  // mutated, so its body "hello" became the start of a next request): in
  // runtime/http/connection.ts the FIN arrives in state "handler", where #onEof() only pauses
  // reading (bytes are queued, so the app is not told the client left). When the exchange is
  // done, onExchangeDone() closes a peer-ended connection only if no bytes are left
  // (`#isPeerEnded && #in.length === 0`); here #process() moves to "head" and waits for bytes
  // the peer can no longer send, with reads paused, until header-timeout (30 s).
  // Fix: in onExchangeDone(), after #process(), if #isPeerEnded and the state is "head" (a
  // head that can never complete), close it (a 400 first is fine too).
  fn: async () => {
    await using srv = await serveFixture("echo.ts", [], { env: { APPRUN_LOG: "info" } });
    using c = await RawClient.connect(srv.port);
    await c.write(GET("/slow?ms=100") + "GET / HT");
    await c.conn.closeWrite();
    const text = await c.readToEnd(3000); // throws when the server keeps it open
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n[^]*slept 100$/);
    c.close();
    await waitUntil(
      () => openConnections(srv.port) === 0,
      () => `the server to close its side (still open: ${openConnections(srv.port)})`,
    );
  },
});
