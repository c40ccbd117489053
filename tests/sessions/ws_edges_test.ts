/**
 * The edges of carrying a WebSocket through a restart, over raw sockets that write exact
 * frame bytes (and Deno's client for the hook failures): a frame split across the restart, a
 * message fragmented across it, pings sent while the old process hands off, and hooks that
 * throw for one session — that session alone gets close 1012.
 */
import assert from "node:assert/strict";
import { waitUntilRead } from "../_proc_net.ts";
import { sleep, waitUntil } from "../_poll.ts";
import { CountingSession } from "./_counting.ts";
import {
  clientFrame,
  closeOf,
  fixture,
  RawWs,
  type Supervised,
  superviseFixture,
} from "./_sessions.ts";

const TEXT = 0x1;
const CONTINUATION = 0x0;
const PING = 0x9;
const PONG = 0xa;

/** The session's state as the server reports it (`state` → `state <json>`). */
async function stateOf(ws: RawWs): Promise<{ recv: number; errors: string[]; pids: number[] }> {
  await ws.write(clientFrame({ opcode: TEXT, payload: "state" }));
  const text = await ws.readText();
  assert.match(text, /^state /);
  return JSON.parse(text.slice(6));
}

/** Waits until the old process has read what was just written: it is in its parser at the handoff. */
const settle = (ws: RawWs) => waitUntilRead([ws.raw]);

Deno.test("a frame split across restarts is delivered once (cut in the length, mask, payload)", async () => {
  await using sup = await superviseFixture(fixture("sessions_counter.ts"));
  using ws = await RawWs.open(sup.port, "/ws?id=split");
  const pids = [sup.pid];
  // 300-byte payloads: a 16-bit length, so the cuts fall inside the extended length (2), the
  // masking key (6), the payload (100); each part is written to a different process.
  const cuts = [2, 6, 100];
  for (let i = 0; i < cuts.length; i++) {
    const n = i + 1;
    const frame = clientFrame({ opcode: TEXT, payload: `c ${n} `.padEnd(300, "x") });
    await ws.write(frame.subarray(0, cuts[i]));
    await settle(ws);
    const r = await sup.restart();
    pids.push(r.pid);
    await ws.write(frame.subarray(cuts[i]));
    assert.equal(await ws.readText(), `a ${n} ${r.pid}`, `cut at byte ${cuts[i]}`);
  }
  const st = await stateOf(ws);
  assert.equal(st.recv, cuts.length);
  assert.deepEqual(st.errors, [], "each message arrived exactly once");
  assert.deepEqual(st.pids, pids);
});

Deno.test("a message fragmented across a restart is reassembled (a ping between fragments)", async () => {
  await using sup = await superviseFixture(fixture("sessions_counter.ts"));
  using ws = await RawWs.open(sup.port, "/ws?id=fragments");
  await ws.write(clientFrame({ opcode: TEXT, fin: false, payload: "c " }));
  await ws.write(clientFrame({ opcode: CONTINUATION, fin: false, payload: "1 part-one" }));
  await settle(ws);
  const r = await sup.restart();
  // §5.4: control frames may come between the fragments of a message.
  await ws.write(clientFrame({ opcode: PING, payload: "between" }));
  const pong = await ws.read();
  assert.equal(pong.opcode, PONG);
  assert.equal(new TextDecoder().decode(pong.payload), "between");
  await ws.write(clientFrame({ opcode: CONTINUATION, fin: true, payload: " part-two" }));
  assert.equal(await ws.readText(), `a 1 ${r.pid}`);
  const st = await stateOf(ws);
  assert.equal(st.recv, 1);
  assert.deepEqual(st.errors, []);
});

/** Sends numbered pings from when the old process starts handing off until `done`. */
async function pingThroughHandoff(sup: Supervised, ws: RawWs): Promise<number> {
  const handingOff = (sup.proc.log.match(/SIGTERM: handing off/g) ?? []).length;
  let isDone = false;
  const restarted = sup.restart().finally(() => isDone = true);
  await waitUntil(
    () => (sup.proc.log.match(/SIGTERM: handing off/g) ?? []).length > handingOff,
    "the old process to start handing off",
    { everyMs: 1 },
  );
  let sent = 0;
  while (!isDone) {
    await ws.write(clientFrame({ opcode: PING, payload: `p${sent++}` }));
    await sleep(2); // pacing: a ping every ~2 ms
  }
  await restarted;
  for (let i = 0; i < 3; i++) await ws.write(clientFrame({ opcode: PING, payload: `p${sent++}` }));
  return sent;
}

Deno.test("pings sent while the old process hands off are all answered, once, in order", async () => {
  await using sup = await superviseFixture(fixture("sessions_counter.ts"));
  using ws = await RawWs.open(sup.port, "/ws?id=pings");
  const sent = await pingThroughHandoff(sup, ws);
  assert.ok(sent >= 5, `only ${sent} pings went out during the handoff`);
  for (let i = 0; i < sent; i++) {
    const f = await ws.read();
    assert.equal(f.opcode, PONG);
    assert.equal(new TextDecoder().decode(f.payload), `p${i}`);
  }
  await ws.write(clientFrame({ opcode: TEXT, payload: "c 1" }));
  assert.equal(await ws.readText(), `a 1 ${sup.pid}`, "nothing else was queued");
  console.log(`${sent} pings during a handoff, every pong back`);
});

Deno.test("a hook that throws closes that session with 1012; the others go on", async () => {
  await using sup = await superviseFixture(fixture("sessions_counter.ts"));
  const url = (id: string) => `ws://127.0.0.1:${sup.port}/ws?id=${id}&push=20`;
  const ids = ["ok-1", "throw-handoff", "ok-2", "throw-resume", "ok-3"];
  const sessions = ids.map((id) => new CountingSession(url(id), id));
  try {
    await Promise.all(sessions.map((s) => s.opened));
    for (const s of sessions) s.startSending(20);
    const first = sup.pid;
    await waitUntil(() => sessions.every((s) => s.acked > 0), "an answer on every session");
    const r = await sup.restart();
    const [ok1, throwHandoff, ok2, throwResume, ok3] = sessions;
    for (const s of [throwHandoff, throwResume]) {
      const ev = await s.closed;
      assert.equal(ev.code, 1012, `${s.id}: close code`);
      assert.equal(ev.reason, "service restart");
    }
    assert.deepEqual(throwHandoff.pids, [first], "closed by the old process");
    for (const s of [ok1, ok2, ok3]) {
      await waitUntil(() => s.pids.at(-1) === r.pid, `${s.id}: an answer from the new process`);
      s.stopSending();
      const sent = s.sent;
      await waitUntil(() => s.isSettled, `${s.id}: every message answered`, { timeoutMs: 5000 });
      const st = await s.state();
      assert.deepEqual(s.events, [], `${s.id}: no close event`);
      assert.deepEqual(s.problems, []);
      assert.deepEqual(st.errors, []);
      assert.equal(st.recv, sent);
      assert.equal(st.sent, s.pushes);
      assert.deepEqual(s.pids, [first, r.pid]);
    }
    // The failed sessions must not hold the others up (no wait for a close reply).
    assert.ok(r.handoffMs < 2000, `the handoff took ${r.handoffMs} ms`);
  } finally {
    await Promise.all(sessions.map((s) => s.close()));
  }
});

Deno.test("WsSession.handOff regression: a 1012 close completes at once, not after 5 s", async () => {
  // The bug: handOff paused reading before asking the hook, and the 1012 fallback never read
  // again, so the peer's close reply sat in the kernel until the 5 s close timeout, and the
  // whole handoff (every other session's pause) waited for it.
  await using sup = await superviseFixture(fixture("sessions_counter.ts"));
  using ws = await RawWs.open(sup.port, "/ws?id=throw-handoff");
  using other = await RawWs.open(sup.port, "/ws?id=other");
  const restarting = sup.restart();
  const f = await ws.read();
  assert.deepEqual(closeOf(f), { code: 1012, reason: "service restart" });
  // Answer the close as RFC 6455 §5.5.1 asks; the server then closes TCP.
  await ws.write(clientFrame({ opcode: 0x8, payload: new Uint8Array([0x03, 0xf4]) }));
  assert.equal(await ws.isClosedByServer(2000), true, "the server closes TCP");
  const r = await restarting;
  assert.ok(r.handoffMs < 2000, `the handoff took ${r.handoffMs} ms`);
  await other.write(clientFrame({ opcode: TEXT, payload: "c 1" }));
  assert.equal(await other.readText(), `a 1 ${r.pid}`);
});
