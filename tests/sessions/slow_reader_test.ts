/**
 * Clients that do not read, against real `apprun serve` workers over raw sockets: whatever a
 * session queues for them is bounded and every wait on them has a deadline (issue 11, item 3;
 * runtime/sessions/output.ts). A ping flood, an echo flood, an app that keeps sending to a
 * WebSocket or an SSE stream, a close handshake or a stream end the client never reads — each
 * is stopped, cut off or timed out, and the other clients of the same worker are served on time
 * meanwhile. "Let go" below means the worker closed its fd of the connection (/proc/PID/fd).
 */
import assert from "node:assert/strict";
import { sleep, waitUntil, withDeadline } from "../_poll.ts";
import { heldConnections, serverEnd } from "../_proc_net.ts";
import { OPCODE } from "../../runtime/ws/constants.ts";
import {
  clientFrame,
  concatBytes,
  fixture,
  RawWs,
  type Supervised,
  superviseFixture,
} from "./_sessions.ts";

const { TEXT, CLOSE, PING } = OPCODE;
const MIB = 1 << 20;
const APP = fixture("slow_readers.ts");

interface Report {
  events: string[];
  sent: number;
  maxBuffered: number;
}

async function report(sup: Supervised, id: string): Promise<Report> {
  const res = await fetch(`http://127.0.0.1:${sup.port}/report?id=${id}`);
  return await res.json();
}

/** The report of session `id` once it holds `count` events. */
async function reportAfter(
  sup: Supervised,
  id: string,
  count: number,
  timeoutMs = 10_000,
): Promise<Report> {
  let last: Report | null = null;
  await waitUntil(
    async () => (last = await report(sup, id)).events.length >= count,
    () => `${count} event(s) of session ${id}: ${JSON.stringify(last)}`,
    { timeoutMs, everyMs: 50 },
  );
  return last!;
}

/** Whether the worker still holds its fd of `ws`'s connection. */
function isHeld(sup: Supervised, ws: RawWs): boolean {
  const port = (ws.raw.conn.localAddr as Deno.NetAddr).port;
  return heldConnections(sup.pid, sup.port).includes(port);
}

/** Another client of the same worker gets its echo within a second: it does not pay. */
async function othersAreServed(sup: Supervised): Promise<void> {
  using other = await RawWs.open(sup.port, "/echo");
  const t0 = performance.now();
  await other.write(clientFrame({ opcode: TEXT, payload: "still here" }));
  assert.equal(await other.readText(1000), "still here");
  const ms = performance.now() - t0;
  assert.ok(ms < 1000, `another client waited ${ms.toFixed(0)} ms for its echo`);
}

function rssMiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

/** Writes `chunk` again and again without reading until a write stalls for `stallMs`. */
async function writeUntilStalled(ws: RawWs, chunk: Uint8Array, maxBytes: number, stallMs = 2000) {
  let written = 0;
  while (written < maxBytes) {
    const write = ws.write(chunk);
    if (await withDeadline(write, stallMs) === "timeout") {
      write.catch(() => {}); // rejected when the connection goes
      return { written, isStalled: true };
    }
    written += chunk.byteLength;
  }
  return { written, isStalled: false };
}

Deno.test("a ping flood from a client that never reads: bounded, then cut off when nothing moves", async () => {
  await using sup = await superviseFixture(APP, { args: ["--body-timeout", "2s"] });
  using ws = await RawWs.open(sup.port, "/flood?id=pings");
  const rss0 = rssMiB(sup.pid);
  const pings = concatBytes(
    ...Array.from(
      { length: 4096 },
      () => clientFrame({ opcode: PING, payload: new Uint8Array(125) }),
    ),
  );
  const t0 = performance.now();
  let written = 0;
  let isCut = false;
  while (performance.now() - t0 < 20_000) {
    try {
      // Enough to show the bound; past it, only wait (an unbounded worker would hold it all).
      if (written >= 128 * MIB) await sleep(100);
      else {
        const write = ws.write(pings);
        if (await withDeadline(write, 1000) === "timeout") write.catch(() => {});
        else written += pings.byteLength;
      }
    } catch {
      isCut = true; // reset by the server
      break;
    }
    if (!isHeld(sup, ws)) {
      isCut = true;
      break;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const rss = rssMiB(sup.pid) - rss0;
  console.log(
    `  ${(written / MIB).toFixed(0)} MiB of pings in ${seconds.toFixed(1)} s; worker RSS +${
      rss.toFixed(0)
    } MiB`,
  );
  assert.ok(isCut, `still connected after ${seconds.toFixed(1)} s of a ping flood`);
  assert.deepEqual((await reportAfter(sup, "pings", 2)).events, ["error", "close 1006 false"]);
  assert.ok(rss < 64, `the worker grew by ${rss.toFixed(0)} MiB: pongs were queued`);
  await othersAreServed(sup);
});

Deno.test("an echo flood from a client that never reads: the worker stops reading it", async () => {
  await using sup = await superviseFixture(APP);
  using ws = await RawWs.open(sup.port, "/echo");
  const message = clientFrame({ opcode: TEXT, payload: "e".repeat(64 * 1024) });
  const batch = concatBytes(...Array.from({ length: 16 }, () => message));
  const { written, isStalled } = await writeUntilStalled(ws, batch, 64 * MIB);
  console.log(`  writes stalled after ${(written / MIB).toFixed(1)} MiB`);
  assert.ok(isStalled, "the worker read (and echoed into its queue) everything");
  const end = serverEnd(ws.raw);
  assert.ok(end !== undefined && end.rxQueue > 0, "unread bytes wait in the worker's kernel");
  await othersAreServed(sup);
});

Deno.test("an app that keeps sending to a WebSocket that never reads: cut off past 16 MiB", async () => {
  await using sup = await superviseFixture(APP);
  using ws = await RawWs.open(sup.port, "/flood?id=ws&mib=64");
  const r = await reportAfter(sup, "ws", 2);
  console.log(
    `  sent ${r.sent} MiB; bufferedAmount reached ${(r.maxBuffered / MIB).toFixed(1)} MiB`,
  );
  assert.deepEqual(r.events, ["error", "close 1006 false"], "no close frame: it would wait");
  assert.ok(r.sent < 64, `every message was queued (${r.sent} MiB)`);
  assert.ok(r.maxBuffered > 8 * MIB, "the app saw bufferedAmount grow");
  assert.ok(r.maxBuffered <= 17 * MIB, `${r.maxBuffered} bytes queued: past the cap`);
  await waitUntil(() => !isHeld(sup, ws), "the worker to let go of the connection");
  await othersAreServed(sup);
});

Deno.test("an SSE stream to a client that never reads: bufferedAmount, cut off past 16 MiB", async () => {
  await using sup = await superviseFixture(APP);
  using c = await Deno.connect({ port: sup.port, hostname: "127.0.0.1" });
  await c.write(new TextEncoder().encode("GET /sse?id=sse&mib=64 HTTP/1.1\r\nHost: t\r\n\r\n"));
  const r = await reportAfter(sup, "sse", 1);
  console.log(
    `  sent ${r.sent} MiB; bufferedAmount reached ${(r.maxBuffered / MIB).toFixed(1)} MiB`,
  );
  assert.deepEqual(r.events, ["closed"]);
  assert.ok(r.sent < 64, `every event was queued (${r.sent} MiB)`);
  assert.ok(
    r.maxBuffered > 8 * MIB && r.maxBuffered <= 17 * MIB,
    `bufferedAmount ${r.maxBuffered}`,
  );
  await othersAreServed(sup);
});

Deno.test("an SSE stream whose client stops reading is cut off after the write-stall time", async () => {
  await using sup = await superviseFixture(APP, { args: ["--body-timeout", "2s"] });
  using c = await Deno.connect({ port: sup.port, hostname: "127.0.0.1" });
  await c.write(new TextEncoder().encode("GET /sse?id=stall&every=10 HTTP/1.1\r\nHost: t\r\n\r\n"));
  const t0 = performance.now();
  const r = await reportAfter(sup, "stall", 1, 30_000);
  const s = (performance.now() - t0) / 1000;
  console.log(`  cut off after ${s.toFixed(1)} s, ${r.sent} events of 64 KiB sent`);
  assert.deepEqual(r.events, ["closed"]);
  assert.ok(r.maxBuffered < 16 * MIB, "cut off by the stall, not by the cap");
});

Deno.test("a WebSocket close the client never reads is cut off after the close timeout", async () => {
  await using sup = await superviseFixture(APP); // write-stall time 60 s: the close timer acts
  using ws = await RawWs.open(sup.port, "/flood?id=close");
  // Pongs fill the kernel's buffers; the worker goes on reading (one pending pong, §5.5.3).
  const pings = concatBytes(
    ...Array.from(
      { length: 4096 },
      () => clientFrame({ opcode: PING, payload: new Uint8Array(125) }),
    ),
  );
  for (let i = 0; i < 24; i++) await ws.write(pings);
  await waitUntil(
    () => (serverEnd(ws.raw)?.txQueue ?? 0) > 0,
    "the worker's send queue to back up",
  );
  await ws.write(clientFrame({ opcode: CLOSE, payload: new Uint8Array([0x03, 0xe8]) }));
  const t0 = performance.now();
  await waitUntil(() => !isHeld(sup, ws), "the worker to let go of the connection", {
    timeoutMs: 10_000,
  });
  console.log(
    `  let go ${((performance.now() - t0) / 1000).toFixed(1)} s after the client's close`,
  );
  const r = await reportAfter(sup, "close", 1);
  assert.deepEqual(r.events, ["close 1000 false"], "the client's code; not a clean close");
});

Deno.test("an SSE stream that ends while its client does not read is let go after the close timeout", async () => {
  await using sup = await superviseFixture(APP);
  using ws = await RawWs.open(sup.port, "/echo"); // keeps a second client on the worker
  using c = await Deno.connect({ port: sup.port, hostname: "127.0.0.1" });
  await c.write(
    new TextEncoder().encode("GET /sse?id=end&mib=8&end=1 HTTP/1.1\r\nHost: t\r\n\r\n"),
  );
  await reportAfter(sup, "end", 1);
  const port = (c.localAddr as Deno.NetAddr).port;
  const t0 = performance.now();
  await waitUntil(
    () => !heldConnections(sup.pid, sup.port).includes(port),
    "the worker to let go of the ended stream's connection",
    { timeoutMs: 10_000 },
  );
  console.log(`  let go ${((performance.now() - t0) / 1000).toFixed(1)} s after the end`);
  assert.ok(isHeld(sup, ws), "the other client is still served");
});
