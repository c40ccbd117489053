/**
 * Server-Sent Events through restarts: one response spans several processes and delivers
 * every event exactly once, in order (ids continuous), read with `fetch` streaming and with a
 * raw client that checks the chunked framing byte by byte; `Last-Event-ID` on a reconnect
 * resumes from the next id; the clock example keeps its ids across a restart.
 */
import assert from "node:assert/strict";
import { ROOT } from "../_proc.ts";
import { RawClient } from "../_net.ts";
import { waitUntil } from "../_poll.ts";
import { fixture, type SseEvent, SseReader, superviseFixture } from "./_sessions.ts";

/** Reads events into `events` until `stop` resolves, then `extra` more. */
async function collect(
  reader: SseReader,
  stop: Promise<unknown>,
  events: SseEvent[],
  extra = 3,
): Promise<SseEvent[]> {
  let isStopped = false;
  stop.then(() => isStopped = true, () => isStopped = true);
  while (!isStopped) events.push(await reader.next());
  for (let i = 0; i < extra; i++) events.push(await reader.next());
  return events;
}

/** Checks ids 1, 2, … with no gap or repeat, each event's data `<id> <pid>`; returns the pids. */
function checkContinuous(events: SseEvent[], firstId = 1): number[] {
  assert.ok(events.length > 0, "no event to check");
  const pids: number[] = [];
  events.forEach((ev, i) => {
    assert.equal(ev.id, String(firstId + i), `event ${i}: id ${ev.id}, expected ${firstId + i}`);
    const [seq, pid] = ev.data.split(" ");
    assert.equal(seq, ev.id);
    if (pids.at(-1) !== Number(pid)) pids.push(Number(pid));
  });
  return pids;
}

Deno.test("SSE: a fetch stream spanning 3 restarts gets every event once, in order", async () => {
  await using sup = await superviseFixture(fixture("sessions_counter.ts"));
  const pids = [sup.pid];
  const res = await fetch(`http://127.0.0.1:${sup.port}/sse?every=10`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const reader = new SseReader(res.body!);
  try {
    const events: SseEvent[] = [];
    /** Waits until the stream has carried an event from the current process. */
    const fromCurrent = () =>
      waitUntil(
        () => events.at(-1)?.data.endsWith(` ${pids.at(-1)}`),
        () => `an event from pid ${pids.at(-1)}`,
      );
    const restarts = (async () => {
      await fromCurrent();
      for (let i = 0; i < 3; i++) {
        pids.push((await sup.restart()).pid);
        await fromCurrent();
      }
    })();
    await collect(reader, restarts, events);
    await restarts;
    assert.deepEqual(checkContinuous(events), pids, "events came from every generation");
    console.log(`${events.length} events over 3 restarts, ids 1–${events.length}, no gap`);
  } finally {
    await reader.cancel();
  }
});

Deno.test("SSE: a raw client sees one chunk per event and no break in the framing", async () => {
  await using sup = await superviseFixture(fixture("sessions_counter.ts"));
  using c = await RawClient.connect(sup.port);
  await c.write("GET /sse?every=10 HTTP/1.1\r\nHost: sessions.test\r\n\r\n");
  await c.readUntil((b) => new TextDecoder().decode(b).includes("\r\n\r\n"));
  const head = c.take(new TextDecoder().decode(c.buffered).indexOf("\r\n\r\n") + 4);
  assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(head, /\r\ntransfer-encoding: chunked\r\n/i);
  const events: SseEvent[] = [];
  async function readChunk(): Promise<void> {
    await c.readUntil((b) => {
      const text = new TextDecoder().decode(b);
      const nl = text.indexOf("\r\n");
      return nl > 0 && b.length >= nl + 2 + parseInt(text.slice(0, nl), 16) + 2;
    });
    const line = new TextDecoder().decode(c.buffered).split("\r\n")[0];
    const size = parseInt(line, 16);
    c.take(line.length + 2);
    const body = c.take(size);
    assert.equal(c.take(2), "\r\n", "chunk ends with CRLF");
    // One whole event per chunk: id, data, blank line.
    const m = /^id: (\d+)\ndata: (\d+ \d+)\n\n$/.exec(body);
    assert.ok(m, `chunk is one event: ${JSON.stringify(body)}`);
    events.push({ id: m[1], data: m[2] });
  }
  for (let i = 0; i < 5; i++) await readChunk();
  const restarted = sup.restart();
  const pids = [sup.pid];
  let isDone = false;
  restarted.then(() => isDone = true);
  while (!isDone) await readChunk();
  pids.push((await restarted).pid);
  for (let i = 0; i < 5; i++) await readChunk();
  assert.deepEqual(checkContinuous(events), pids);
});

Deno.test("SSE: Last-Event-ID on a reconnect resumes from the next id, also after a restart", async () => {
  await using sup = await superviseFixture(fixture("sessions_counter.ts"));
  const url = `http://127.0.0.1:${sup.port}/sse?every=10`;
  const first = new SseReader((await fetch(url)).body!);
  let last: SseEvent;
  try {
    for (let i = 0; i < 5; i++) last = await first.next();
  } finally {
    await first.cancel();
  }
  assert.equal(last!.id, "5");
  await sup.restart();
  const res = await fetch(url, { headers: { "Last-Event-ID": last!.id } });
  const second = new SseReader(res.body!);
  try {
    const ev = await second.next();
    assert.deepEqual(ev, { id: "6", data: `6 ${sup.pid}` });
  } finally {
    await second.cancel();
  }
});

Deno.test("examples/clock.ts: the stream stays open through a restart and its ids continue", async () => {
  await using sup = await superviseFixture(`${ROOT}/examples/clock.ts`);
  const res = await fetch(`http://127.0.0.1:${sup.port}/events`);
  const reader = new SseReader(res.body!);
  try {
    const before = await reader.next();
    assert.equal(before.id, "1");
    assert.equal(JSON.parse(before.data).pid, sup.pid);
    const r = await sup.restart();
    const events = [before];
    while (JSON.parse(events.at(-1)!.data).pid !== r.pid) events.push(await reader.next(3000));
    events.forEach((ev, i) => assert.equal(ev.id, String(i + 1)));
  } finally {
    await reader.cancel();
  }
});

Deno.test("SSE: an HTTP/1.0 (close-delimited) stream spans a restart too", async () => {
  await using sup = await superviseFixture(fixture("sessions_counter.ts"));
  using c = await RawClient.connect(sup.port);
  await c.write("GET /sse?every=10 HTTP/1.0\r\nHost: sessions.test\r\n\r\n");
  const dec = new TextDecoder();
  await c.readUntil((b) => dec.decode(b).includes("\r\n\r\n"));
  const head = c.take(dec.decode(c.buffered).indexOf("\r\n\r\n") + 4);
  assert.match(head, /^HTTP\/1\.[01] 200 OK\r\n/);
  assert.doesNotMatch(head, /transfer-encoding/i, "no chunked framing for HTTP/1.0");
  const events: SseEvent[] = [];
  async function readEvent(): Promise<void> {
    await c.readUntil((b) => dec.decode(b).includes("\n\n"));
    const text = dec.decode(c.buffered);
    const block = c.take(text.indexOf("\n\n") + 2);
    const m = /^id: (\d+)\ndata: (\d+ \d+)\n\n$/.exec(block);
    assert.ok(m, `one event: ${JSON.stringify(block)}`);
    events.push({ id: m[1], data: m[2] });
  }
  for (let i = 0; i < 3; i++) await readEvent();
  const pids = [sup.pid];
  pids.push((await sup.restart()).pid);
  while (Number(events.at(-1)!.data.split(" ")[1]) !== sup.pid) await readEvent();
  for (let i = 0; i < 3; i++) await readEvent();
  assert.deepEqual(checkContinuous(events), pids);
});

Deno.test("SSE: a hook that throws ends that stream cleanly; the connection serves on, Last-Event-ID resumes", async () => {
  await using sup = await superviseFixture(fixture("sessions_counter.ts"));
  using c = await RawClient.connect(sup.port);
  await c.write("GET /sse?every=10&id=throw-handoff HTTP/1.1\r\nHost: sessions.test\r\n\r\n");
  await c.readUntil((b) => new TextDecoder().decode(b).includes("\n\n")); // the stream runs
  const restarting = sup.restart();
  const res = await c.readResponse(); // the whole chunked body: the stream ended
  assert.equal(res.status, 200);
  assert.equal(res.chunks.at(-1), 0, "the response ended with its last chunk");
  const ids = [...res.body.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
  assert.ok(ids.length > 0);
  ids.forEach((id, i) => assert.equal(id, i + 1));
  const r = await restarting;
  // The keep-alive connection went back to HTTP and was carried to the new process.
  await c.write(
    `GET /sse?every=10 HTTP/1.1\r\nHost: sessions.test\r\nLast-Event-ID: ${ids.at(-1)}\r\n\r\n`,
  );
  await c.readUntil((b) => /\r\n\r\n[0-9a-f]+\r\n[^]*\n\n\r\n/.test(new TextDecoder().decode(b)));
  const text = new TextDecoder().decode(c.buffered);
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(text, new RegExp(`\r\nid: ${ids.at(-1)! + 1}\ndata: ${ids.at(-1)! + 1} ${r.pid}\n`));
});
