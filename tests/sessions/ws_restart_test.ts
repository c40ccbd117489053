/**
 * WebSocket sessions through restarts, seen by Deno's own `WebSocket` client: every session
 * sends numbered messages and receives numbered answers and server pushes while the server
 * restarts — 10 times under the embedded supervisor, 3 times under a real systemd, on both
 * paths: cold (the control socket's `restart`, `systemctl --user restart`) and warm (SIGHUP,
 * `systemctl --user reload`). No close event, nothing lost, duplicated or reordered in
 * either direction, the per-session counters intact in the app, a new pid each time. All of it
 * with two event loops in the service as well (`--parallel 2`: sessions spread over both).
 */
import assert from "node:assert/strict";
import { waitUntil } from "../_poll.ts";
import { systemdTest } from "../_systemd.ts";
import { installApp } from "../_systemd_app.ts";
import { percentile } from "../../scripts/e2e/load.ts";
import { CountingSession } from "./_counting.ts";
import { fixture, superviseFixture } from "./_sessions.ts";

const SEND_MS = 40;
const PUSH_MS = 50;

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

/** Waits until every session has had an answer from `pid` (its messages flow through it). */
async function waitForAnswersFrom(sessions: CountingSession[], pid: number): Promise<void> {
  await waitUntil(
    () => sessions.every((s) => s.pids.at(-1) === pid),
    () =>
      `an answer from pid ${pid} on every session (${
        sessions.filter((s) => s.pids.at(-1) !== pid).length
      } without)`,
  );
}

/**
 * Stops sending, waits for every answer, and checks each session against the server's own
 * count: returns the number of messages exchanged.
 */
async function settleAndCheck(sessions: CountingSession[], pids: number[]): Promise<number> {
  for (const s of sessions) s.stopSending();
  await waitUntil(() => sessions.every((s) => s.isSettled), "every message to be answered");
  assert.ok(sessions.length > 0 && sessions.every((s) => s.sent > 0), "every session sent");
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

/** `--parallel N` for N loops (none for one). */
const parallelArgs = (loops: number) => loops > 1 ? ["--parallel", String(loops)] : [];
const parallelName = (loops: number) => loops > 1 ? ` (--parallel ${loops})` : "";

for (const loops of [1, 2]) {
  for (const path of ["restart", "reload"] as const) {
    const what = path === "reload" ? "warm reloads (SIGHUP)" : "cold restarts";
    Deno.test(
      `WebSocket: 100 Deno clients, numbered both ways, through 10 ${what}${parallelName(loops)}`,
      async () => {
        await sessionsThrough(path, loops);
      },
    );
  }
}

async function sessionsThrough(path: "restart" | "reload", loops: number): Promise<void> {
  const args = parallelArgs(loops);
  await using sup = await superviseFixture(fixture("sessions_counter.ts"), { args });
  const pids = [sup.pid];
  const sessions = await openSessions(sup.port, 100);
  try {
    const t0 = performance.now();
    for (const s of sessions) s.startSending(SEND_MS);
    await waitForAnswersFrom(sessions, sup.pid);
    const handoffs: number[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await (path === "reload" ? sup.reload() : sup.restart());
      assert.ok(!pids.includes(r.pid), `${path} ${i + 1}: pid ${r.pid} is new`);
      pids.push(r.pid);
      handoffs.push(r.handoffMs);
      await waitForAnswersFrom(sessions, r.pid);
    }
    const messages = await settleAndCheck(sessions, pids);
    const seconds = (performance.now() - t0) / 1000;
    const rtts = sessions.flatMap((s) => s.rtts);
    console.log(
      `supervisor: 100 sessions, 10 ${path}s, ${messages} messages in ${seconds.toFixed(1)} s ` +
        `(${Math.round(messages / seconds)}/s); handoff p50 ${percentile(handoffs, 50)} ms, ` +
        `max ${Math.max(...handoffs)} ms; round trip p50 ${percentile(rtts, 50).toFixed(1)} ms, ` +
        `p99 ${percentile(rtts, 99).toFixed(1)} ms, max ${Math.max(...rtts).toFixed(1)} ms`,
    );
  } finally {
    await closeAll(sessions);
  }
}

for (
  const [loops, verb] of [[1, "restart"], [1, "reload"], [2, "restart"], [2, "reload"]] as const
) {
  systemdTest(
    `WebSocket: 20 Deno clients, numbered both ways, through 3 systemctl --user ${verb}s` +
      parallelName(loops),
    async (m) => {
      const { port } = await installApp(m, {
        name: "sessions",
        fixture: "sessions_counter.ts",
        args: parallelArgs(loops),
      });
      const first = await fetch(`http://127.0.0.1:${port}/`);
      const pids = [Number(await first.text())];
      await m.waitFor("sessions.service", "ActiveState", "active");
      const sessions = await openSessions(port, 20);
      try {
        for (const s of sessions) s.startSending(SEND_MS);
        await waitForAnswersFrom(sessions, pids[0]);
        for (let i = 0; i < 3; i++) {
          const r = await m.systemctl(verb, "sessions.service");
          assert.equal(r.code, 0, `${verb} ${i + 1}: ${r.stderr}\n${await m.log()}`);
          const pid = Number(await m.show("sessions.service", "MainPID"));
          assert.ok(!pids.includes(pid), `${verb} ${i + 1}: MainPID ${pid} is new`);
          pids.push(pid);
          await waitForAnswersFrom(sessions, pid);
        }
        const messages = await settleAndCheck(sessions, pids);
        const rtts = sessions.flatMap((s) => s.rtts);
        console.log(
          `systemd: 20 sessions, 3 ${verb}s, ${messages} messages; round trip max ` +
            `${Math.max(...rtts).toFixed(1)} ms`,
        );
      } finally {
        await closeAll(sessions);
      }
    },
  );
}
