/**
 * WebSocket sessions through restarts, seen by Deno's own `WebSocket` client: every session
 * sends numbered messages and receives numbered answers and server pushes while the server
 * restarts — 10 times under the embedded supervisor (SIGHUP), 3 times under a real systemd
 * (`systemctl --user restart`). No close event, nothing lost, duplicated or reordered in
 * either direction, the per-session counters intact in the app, a new pid each time.
 */
import assert from "node:assert/strict";
import { sleep } from "../_helpers.ts";
import { isAvailable, startUserManager } from "../_systemd.ts";
import { CountingSession } from "./_counting.ts";
import { fixture, percentile, superviseFixture } from "./_sessions.ts";

const SEND_MS = 40;
const PUSH_MS = 50;

async function waitUntil(pred: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Opens `count` sessions on `port`; the caller closes them (`closeAll`). */
async function openSessions(port: number, count: number): Promise<CountingSession[]> {
  const sessions = Array.from(
    { length: count },
    (_, i) => new CountingSession(`ws://127.0.0.1:${port}/ws?id=s${i}&push=${PUSH_MS}`, `s${i}`),
  );
  await Promise.all(sessions.map((s) => s.opened));
  return sessions;
}

async function closeAll(sessions: CountingSession[]): Promise<void> {
  await Promise.all(sessions.map((s) => s.close()));
}

/**
 * Stops sending, waits for every answer, and checks each session against the server's own
 * count: returns the number of messages exchanged.
 */
async function settleAndCheck(sessions: CountingSession[], pids: number[]): Promise<number> {
  for (const s of sessions) s.stopSending();
  await waitUntil(() => sessions.every((s) => s.isSettled), "every message to be answered");
  let messages = 0;
  for (const s of sessions) {
    const st = await s.state();
    assert.deepEqual(s.events, [], `${s.id}: close or error event during the run`);
    assert.deepEqual(s.problems, [], `${s.id}: client saw lost/duplicated/reordered messages`);
    assert.deepEqual(st.errors, [], `${s.id}: server saw a gap in the client's numbers`);
    assert.equal(st.id, s.id);
    assert.equal(st.recv, s.sent, `${s.id}: server counted ${st.recv}, client sent ${s.sent}`);
    assert.equal(st.sent, s.pushes, `${s.id}: server pushed ${st.sent}, client got ${s.pushes}`);
    assert.deepEqual(st.pids, pids, `${s.id}: served by every generation, in order`);
    assert.deepEqual(s.pids, pids, `${s.id}: answers came from every generation, in order`);
    messages += 2 * s.sent + s.pushes;
  }
  return messages;
}

Deno.test("WebSocket: 100 Deno clients, numbered both ways, through 10 SIGHUP restarts", async () => {
  await using sup = await superviseFixture(fixture("sessions_counter.ts"));
  const pids = [sup.pid];
  const sessions = await openSessions(sup.port, 100);
  try {
    const t0 = performance.now();
    for (const s of sessions) s.startSending(SEND_MS);
    await sleep(300);
    const handoffs: number[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await sup.restart();
      assert.ok(!pids.includes(r.pid), `restart ${i + 1}: pid ${r.pid} is new`);
      pids.push(r.pid);
      handoffs.push(r.handoffMs);
      await sleep(250);
    }
    const messages = await settleAndCheck(sessions, pids);
    const seconds = (performance.now() - t0) / 1000;
    const rtts = sessions.flatMap((s) => s.rtts);
    console.log(
      `supervisor: 100 sessions, 10 restarts, ${messages} messages in ${seconds.toFixed(1)} s ` +
        `(${Math.round(messages / seconds)}/s); handoff p50 ${percentile(handoffs, 50)} ms, ` +
        `max ${Math.max(...handoffs)} ms; round trip p50 ${percentile(rtts, 50).toFixed(1)} ms, ` +
        `p99 ${percentile(rtts, 99).toFixed(1)} ms, max ${Math.max(...rtts).toFixed(1)} ms`,
    );
  } finally {
    await closeAll(sessions);
  }
});

const noSystemd = isAvailable();
if (noSystemd) console.log(`skip: WebSocket sessions under systemd: ${noSystemd}`);

function freePort(): number {
  const l = Deno.listen({ port: 0, hostname: "127.0.0.1" });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test({
  name: "WebSocket: 20 Deno clients, numbered both ways, through 3 systemctl --user restarts",
  ignore: noSystemd !== null,
  async fn() {
    await using m = await startUserManager();
    const port = freePort();
    await m.writeUnit("sessions.socket", `[Socket]\nListenStream=127.0.0.1:${port}\n`);
    await m.writeUnit(
      "sessions.service",
      `[Service]\nType=notify\nNotifyAccess=main\n` +
        `ExecStart=${new URL("../../bin/apprun", import.meta.url).pathname} serve ` +
        `${fixture("sessions_counter.ts")}\nFileDescriptorStoreMax=16\nTimeoutStopSec=30\n`,
    );
    await m.daemonReload();
    const started = await m.systemctl("start", "sessions.socket");
    assert.equal(started.code, 0, started.stderr);
    const first = await fetch(`http://127.0.0.1:${port}/`);
    const pids = [Number(await first.text())];
    await m.waitFor("sessions.service", "ActiveState", "active");
    const sessions = await openSessions(port, 20);
    try {
      for (const s of sessions) s.startSending(SEND_MS);
      await sleep(300);
      for (let i = 0; i < 3; i++) {
        const r = await m.systemctl("restart", "sessions.service");
        assert.equal(r.code, 0, `restart ${i + 1}: ${r.stderr}\n${await m.log()}`);
        const pid = Number(await m.show("sessions.service", "MainPID"));
        assert.ok(!pids.includes(pid), `restart ${i + 1}: MainPID ${pid} is new`);
        pids.push(pid);
        await sleep(300);
      }
      const messages = await settleAndCheck(sessions, pids);
      const rtts = sessions.flatMap((s) => s.rtts);
      console.log(
        `systemd: 20 sessions, 3 restarts, ${messages} messages; round trip max ` +
          `${Math.max(...rtts).toFixed(1)} ms`,
      );
    } finally {
      await closeAll(sessions);
    }
  },
});
