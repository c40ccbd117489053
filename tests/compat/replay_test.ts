/**
 * Sessions without hooks are given back to the app by replaying their opening request
 * (docs/design.md, "Sessions without hooks"), under the embedded supervisor with real clients:
 * the app can tell a replay (the `apprun-resumed` header, `isResumed(req)`) and skip its
 * greeting; a replay that throws, answers without upgrading or never answers closes that one
 * session with 1012 while the others go on; a slow replay survives a second handoff that comes
 * before it finished; apprun's `sse()` continues from Last-Event-ID; an SSE body whose replay
 * fails ends with the last chunk and the connection serves HTTP again.
 */
import assert from "node:assert/strict";
import { RawClient } from "../_net.ts";
import { sleep } from "../_poll.ts";
import { startSupervised, waitForLines } from "../handoff/_util.ts";
import { Client, SseCounter } from "./_compat.ts";
import type { SseEvent } from "../sessions/_sessions.ts";

async function openClients(port: number, paths: string[]): Promise<Client[]> {
  const clients = paths.map((p) => new Client(`ws://127.0.0.1:${port}${p}`));
  await Promise.all(clients.map((c) => c.opened));
  return clients;
}

Deno.test("replay: the app tells a resumed socket by its request, and greets only new ones", async () => {
  await using app = await startSupervised({ fixture: "replay_probe.ts" });
  const [c] = await openClients(app.port, ["/ws"]);
  try {
    const pid1 = await app.pid();
    assert.equal(await c.ask("one"), `echo ${pid1} - false one`);
    const pid2 = await app.restart();
    assert.equal(await c.ask("two"), `echo ${pid2} 1 true two`);
    const pid3 = await app.restart();
    assert.equal(await c.ask("three"), `echo ${pid3} 1 true three`);
    assert.deepEqual(c.messages.filter((m) => m.startsWith("welcome")), [`welcome ${pid1}`]);
  } finally {
    await c.close();
  }
});

Deno.test("replay: one that throws, does not upgrade or hangs closes that session with 1012; the others go on", async () => {
  await using app = await startSupervised({ fixture: "replay_probe.ts" });
  const good = await openClients(app.port, ["/ws", "/ws", "/ws"]);
  const [throws, plain, hangs] = await openClients(app.port, [
    "/ws?mode=throw",
    "/ws?mode=plain",
    "/ws?mode=hang",
  ]);
  try {
    for (const c of [...good, throws, plain, hangs]) await c.ask("before");
    const pid = await app.restart();
    const [t, p] = await Promise.all([throws.closed, plain.closed]);
    assert.equal(t.code, 1012, "a replay that throws");
    assert.equal(p.code, 1012, "a replay that answers without upgrading");
    for (const [i, c] of good.entries()) {
      assert.equal(await c.ask(`g${i}`), `echo ${pid} 1 true g${i}`);
    }
    await waitForLines(
      app,
      /WebSocket .*mode=throw not resumed: the handler threw: .*replay refused/g,
    );
    await waitForLines(app, /WebSocket .*mode=plain not resumed: the handler did not upgrade/g);
    // The replay that never answers is given up after 10 s, with 1012 too.
    assert.equal((await hangs.closed).code, 1012, "a replay that never answers");
    await waitForLines(app, /mode=hang not resumed: no response within 10000 ms/g);
    for (const [i, c] of good.entries()) {
      assert.equal(await c.ask(`h${i}`), `echo ${pid} 1 true h${i}`);
    }
  } finally {
    for (const c of [...good, throws, plain, hangs]) await c.close();
  }
});

Deno.test("replay: a second handoff before a slow replay answered carries the session on", async () => {
  await using app = await startSupervised({ fixture: "replay_probe.ts" });
  const [c] = await openClients(app.port, ["/ws?mode=slow"]);
  try {
    await c.ask("before");
    await app.restart(); // READY=1 comes before the 1.5 s replay has answered
    const pid = await app.restart();
    await waitForLines(app, /WebSocket .*mode=slow carried on before the app answered its replay/g);
    assert.equal(await c.ask("after"), `echo ${pid} 1 true after`);
    assert.equal(c.ws.readyState, WebSocket.OPEN);
  } finally {
    await c.close();
  }
});

Deno.test("replay: every session is back in the app before any reads what its client sent meanwhile", async () => {
  // A chat whose handler takes 300 ms to come back for some clients: a message the others sent
  // during the handoff must still reach them (their set entry is made in `open`).
  await using app = await startSupervised({ fixture: "replay_probe.ts" });
  const clients = await openClients(app.port, [
    "/chat?delay=0",
    "/chat?delay=300",
    "/chat?delay=0",
  ]);
  try {
    const restarted = app.restart();
    await sleep(20);
    clients[0].ws.send("during");
    await restarted;
    for (const [i, c] of clients.entries()) {
      const deadline = Date.now() + 5000;
      while (!c.messages.includes("during") && Date.now() < deadline) await sleep(20);
      assert.deepEqual(c.messages, ["during"], `client ${i}`);
    }
  } finally {
    for (const c of clients) await c.close();
  }
});

/** Reads `path` through `restarts` restarts: every id once, in order, events after each. */
async function streamThroughRestarts(
  path: string,
  restarts: number,
  isWhole?: (ev: SseEvent) => boolean,
): Promise<void> {
  await using app = await startSupervised({ fixture: "replay_probe.ts" });
  const s = new SseCounter(app.port, path, isWhole);
  try {
    await s.reach(5);
    for (let i = 0; i < restarts; i++) {
      await app.restart();
      const last = s.last;
      await s.reach(last + 5);
      assert.ok(s.last >= last + 5, `events stopped at ${s.last}`);
    }
    assert.deepEqual(s.problems, []);
  } finally {
    await s.stop();
  }
}

Deno.test("replay: apprun's sse() without hooks goes on from Last-Event-ID, every id once", async () => {
  await streamThroughRestarts("/sse", 3);
});

Deno.test("replay: an SSE body written in pieces is stopped after a whole event, never inside one", async () => {
  await streamThroughRestarts(
    "/sse-body?split=1",
    4,
    (ev) => /^\d+ \d+$/.test(ev.data) && ev.data.startsWith(`${ev.id} `),
  );
});

Deno.test("replay: an SSE body whose replay throws ends with the last chunk; the connection serves on", async () => {
  await using app = await startSupervised({ fixture: "replay_probe.ts" });
  using c = await RawClient.connect(app.port);
  await c.write("GET /sse-body?mode=throw HTTP/1.1\r\nHost: t\r\n\r\n");
  await c.readUntil((b) => new TextDecoder().decode(b).includes("id: 3\n"));
  await app.restart();
  // A chunked body: it must end with the zero-length chunk, right after a whole event.
  await c.readUntil((b) => new TextDecoder().decode(b).endsWith("\r\n0\r\n\r\n"));
  const text = new TextDecoder().decode(c.buffered);
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(text, /\n\n\r\n0\r\n\r\n$/, "ended between events");
  await waitForLines(app, /SSE stream .*sse-body\?mode=throw not resumed: the handler threw/g);
  c.take(c.buffered.length);
  await c.write("GET /plain HTTP/1.1\r\nHost: t\r\n\r\n");
  const res = await c.readResponse();
  assert.equal(res.body, `hello ${await app.pid()}`, "the same connection serves HTTP again");
});

Deno.test("replay: an HTTP/1.0 SSE body goes on close-delimited, every id once", async () => {
  await using app = await startSupervised({ fixture: "replay_probe.ts" });
  using c = await RawClient.connect(app.port);
  await c.write("GET /sse-body HTTP/1.0\r\nHost: t\r\n\r\n");
  const ids = () =>
    [...new TextDecoder().decode(c.buffered).matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
  await c.readUntil(() => ids().length >= 3);
  const pid = await app.restart();
  const fromNew = () => new TextDecoder().decode(c.buffered).split(` ${pid}\n\n`).length - 1;
  await c.readUntil(() => fromNew() >= 5);
  const text = new TextDecoder().decode(c.buffered);
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n/); // RFC 9110 §2.5: the server's own version
  assert.match(text, /\r\nconnection: close\r\n/);
  assert.doesNotMatch(text, /transfer-encoding/i);
  const seen = ids();
  assert.deepEqual(seen, seen.map((_, i) => i + 1), "ids 1, 2, 3, … once each");
  assert.match(text, /\n\nid: \d+\ndata: \d+ \d+\n\n/, "raw events, no chunk framing");
});
