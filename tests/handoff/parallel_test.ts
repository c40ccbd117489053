/**
 * `apprun serve --parallel 2` (docs/design.md, "Several loops"): two event loops in one process,
 * each with its own module instance of tests/fixtures/loops.ts (which names its instance in
 * every answer). Many concurrent connections are served by both loops; under the supervisor and
 * a real systemd, on both paths (cold restart through the fdstore, warm reload), keep-alive
 * clients under load lose nothing, every held keep-alive connection is answered by the new
 * process — spread over both of its loops — a WebSocket session keeps its count and an SSE stream
 * goes on from its last event id, nothing lost or repeated. A count
 * that is not one is one usage line; without one, `DENO_JOBS` (or the cores) decide. A stop
 * (SIGINT) finishes the requests in flight on every loop, refuses new connections, and exits.
 */
import assert from "node:assert/strict";
import { GET, RawClient } from "../_net.ts";
import { assertNothingLost } from "../_load.ts";
import { sleep, waitUntil } from "../_poll.ts";
import { APPRUN, FIXTURES, run, spawn } from "../_proc.ts";
import { runLoad } from "../../scripts/e2e/load.ts";
import { SseReader } from "../sessions/_sessions.ts";
import { type App, linesAt, readAnswer, startApp, testUnderAll } from "./_util.ts";

const PARALLEL = { fixture: "loops.ts", args: ["--parallel", "2"] };

/** Which loop answered: the fixture's third word. */
async function loopOf(
  c: RawClient,
  id: string,
): Promise<{ pid: number; loop: string; args: string }> {
  await c.write(GET(`/r?id=${id}`));
  const a = await readAnswer(c);
  assert.equal(a.id, id);
  const [, , loop, args = ""] = a.res.body.trim().split(" ");
  return { pid: a.pid, loop, args };
}

/** `count` keep-alive connections opened at once, each asked once. */
async function openClients(app: App, count: number, tag: string) {
  const clients = await Promise.all(
    Array.from({ length: count }, () => RawClient.connect(app.port)),
  );
  const loops = await Promise.all(clients.map((c, i) => loopOf(c, `${tag}${i}`)));
  return { clients, loops };
}

/** A WebSocket on the fixture's `/ws`: `say(k)` answers `[count, pid]`. */
async function openWs(port: number) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  const answers: string[] = [];
  const waiting: ((s: string) => void)[] = [];
  ws.onmessage = (e) => {
    const w = waiting.shift();
    if (w) w(String(e.data));
    else answers.push(String(e.data));
  };
  let closed = false;
  ws.onclose = () => closed = true;
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  return {
    get closed() {
      return closed;
    },
    async say(k: number): Promise<[number, number]> {
      const answer = new Promise<string>((r) => waiting.push(r));
      ws.send(`n:${k}`);
      const [echo, count, pid] = (await answer).split(" ");
      assert.equal(Number(echo), k);
      return [Number(count), Number(pid)];
    },
    close: () => ws.close(),
  };
}

/**
 * Rounds of 40 concurrent connections to `port` until `loops` loops answered (or 10 rounds):
 * the loops seen. Every answer must show the app's arguments `args`.
 */
async function seeLoops(port: number, loops: number, args: string): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let round = 0; round < 10 && seen.size < loops; round++) {
    const clients = await Promise.all(Array.from({ length: 40 }, () => RawClient.connect(port)));
    const answers = await Promise.all(clients.map((c, i) => loopOf(c, `c${round}-${i}`)));
    for (const a of answers) {
      seen.add(a.loop);
      assert.equal(a.args, args, "the app's arguments reach every loop (its Deno.args)");
    }
    for (const c of clients) c.close();
  }
  return seen;
}

Deno.test("--parallel 2: concurrent connections are served by both loops", async () => {
  const args = [...PARALLEL.args, "--", "x", "y"];
  await using app = await startApp("supervisor", { ...PARALLEL, args });
  const seen = await seeLoops(app.port, 2, "x,y");
  assert.equal(seen.size, 2, `answers came from loops ${[...seen].join(", ")}`);
  assert.match(await app.log(), /serving on 2 event loops/);
});

testUnderAll("--parallel 2: load, keep-alive, WebSocket and SSE through restarts", async (app) => {
  const held = await openClients(app, 16, "held");
  const ws = await openWs(app.port);
  const [count0] = await ws.say(1);
  assert.equal(count0, 1);
  const events = new SseReader((await fetch(`http://127.0.0.1:${app.port}/sse`)).body!);
  const ids: number[] = [];
  const ssePids: number[] = [];
  let isReading = true;
  const reading = (async () => {
    while (isReading) {
      const [i, pid] = (await events.next()).data.split(" ");
      ids.push(Number(i));
      if (ssePids.at(-1) !== Number(pid)) ssePids.push(Number(pid));
    }
  })();
  let done!: () => void;
  const until = new Promise<void>((r) => done = r);
  const load = runLoad({ port: app.port, connections: 40, until });
  const pids = [await app.pid()];
  try {
    await sleep(300);
    for (let i = 0; i < 2; i++) {
      pids.push(await app.restart());
      assert.notEqual(pids.at(-1), pids.at(-2));
      await sleep(300);
    }
  } finally {
    done();
  }
  const report = await load;
  assertNothingLost(report, `--parallel 2 ${app.path}s`, 100);
  const spanning = report.pidsPerConnection.filter((p) => p.length >= 2).length;
  assert.equal(spanning, 40, "every load connection was answered by more than one generation");
  // Every held connection was carried, and the new process spread them over its two loops.
  const after = await Promise.all(held.clients.map((c, i) => loopOf(c, `after${i}`)));
  for (const a of after) assert.equal(a.pid, pids.at(-1));
  assert.equal(new Set(after.map((a) => a.loop)).size, 2, "carried connections on both loops");
  // The SSE stream went on through both handoffs: every id once, in order.
  await waitUntil(() => ssePids.at(-1) === pids.at(-1), () => `SSE events from ${pids.at(-1)}`);
  isReading = false;
  await reading;
  await events.cancel();
  assert.deepEqual(ids, ids.map((_, i) => i), "SSE ids 0, 1, 2… with no gap or repeat");
  assert.deepEqual(ssePids, pids, "SSE events from every generation");
  // The WebSocket session kept its count through both handoffs.
  const [count, pid] = await ws.say(2);
  assert.deepEqual([count, pid], [2, pids.at(-1)]);
  assert.equal(ws.closed, false);
  ws.close();
  for (const c of held.clients) c.close();
  const log = await app.log();
  assert.ok((log.match(/serving on 2 event loops/g)?.length ?? 0) >= 3, log);
  assert.deepEqual(linesAt(log, "error"), []);
}, PARALLEL);

Deno.test("--parallel 0, junk or too many: one usage line, exit 2", async () => {
  const app = `${FIXTURES}/loops.ts`;
  for (
    const [args, line] of [
      [["--parallel", "0"], `--parallel: "0" is not a positive whole number`],
      [["--parallel", "junk"], `--parallel: "junk" is not a positive whole number`],
      [["--parallel=-1"], `--parallel: "-1" is not a positive whole number`],
      [["--parallel", "257"], "--parallel: 257 is more than 256 loops"],
    ]
  ) {
    const r = await run(APPRUN, ["serve", app, ...args, "--no-supervisor"]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout + r.stderr, `apprun: ${line}\n`);
  }
});

Deno.test("--parallel without a count: DENO_JOBS loops, each with the app's arguments", async () => {
  const args = ["serve", `${FIXTURES}/loops.ts`, "--parallel", "--port", "0", "--host"];
  await using proc = spawn(APPRUN, [...args, "127.0.0.1", "--no-supervisor", "--", "p", "q"], {
    env: { DENO_JOBS: "3" },
  });
  const listening = () => proc.log.match(/loop \d: listening on/g)?.length ?? 0;
  await waitUntil(() => listening() >= 2, () => proc.log);
  assert.match(proc.log, /serving on 3 event loops/);
  const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(proc.log)![1]);
  assert.equal((await seeLoops(port, 3, "p,q")).size, 3, proc.log);
});

Deno.test("--parallel 2, Deno.serve under import.meta.main: loop 0 serves alone, said once", async () => {
  const args = ["serve", `${FIXTURES}/args.ts`, "--parallel", "2", "--port", "0", "--host"];
  await using proc = spawn(APPRUN, [...args, "127.0.0.1", "--no-supervisor", "--", "a", "b"]);
  const port = await waitUntil(
    () => /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(proc.log)?.[1],
    () => proc.log,
  );
  const res = await fetch(`http://127.0.0.1:${port}/`);
  assert.deepEqual((await res.json()).args, ["a", "b"]);
  assert.match(proc.log, /warn +loop 1 does not serve: .*import\.meta\.main/);
  assert.match(proc.log, /serving on 1 event loop\n/);
});

Deno.test("--parallel 2, SIGINT: requests in flight on both loops are answered, then it exits", async () => {
  const args = ["serve", `${FIXTURES}/loops.ts`, "--parallel", "2", "--port", "0", "--host"];
  await using proc = spawn(APPRUN, [...args, "127.0.0.1", "--no-supervisor"]);
  await waitUntil(() => /loop 1: listening on/.test(proc.log), () => proc.log);
  const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(proc.log)![1]);
  // Keep-alive connections on both loops (each one's loop known from a first answer).
  const clients: RawClient[] = [];
  const loopOfClient: string[] = [];
  for (let round = 0; round < 10 && new Set(loopOfClient).size < 2; round++) {
    const batch = await Promise.all(Array.from({ length: 20 }, () => RawClient.connect(port)));
    const seen = await Promise.all(batch.map((c, i) => loopOf(c, `p${round}-${i}`)));
    clients.push(...batch);
    loopOfClient.push(...seen.map((l) => l.loop));
  }
  assert.equal(new Set(loopOfClient).size, 2, "connections on both loops");
  // The Workers' requests outlast the main loop's: it must wait for them before it exits.
  for (const [i, c] of clients.entries()) {
    const ms = loopOfClient[i].startsWith("main") ? 300 : 1000;
    await c.write(GET(`/slow?id=s${i}&ms=${ms}`));
  }
  await sleep(150); // in flight on both loops
  proc.kill("SIGINT");
  // Each client goes once answered (the main loop's stop waits for its own clients only).
  const answers = await Promise.all(clients.map((c) => readAnswer(c).finally(() => c.close())));
  answers.forEach((a, i) => {
    assert.equal(a.status, 200);
    assert.equal(a.id, `s${i}`);
    assert.equal(a.res.body.split(" ")[2], loopOfClient[i], "answered by its own loop");
  });
  assert.equal((await proc.wait()).code, 0, proc.log);
  await assert.rejects(Deno.connect({ port, hostname: "127.0.0.1" }), "the listener is closed");
  assert.match(proc.log, /SIGINT: stopping/);
});

Deno.test("--parallel 2, Deno.serve without onListen: every loop serves, one Listening line", async () => {
  const args = ["serve", `${FIXTURES}/deno_apps/hello.ts`, "--parallel", "2", "--port", "0"];
  await using proc = spawn(APPRUN, [...args, "--host", "127.0.0.1", "--no-supervisor"]);
  await waitUntil(() => /loop 1: listening on/.test(proc.log), () => proc.log);
  assert.match(proc.log, /serving on 2 event loops/);
  assert.equal(proc.log.match(/^Listening on /gm)?.length, 1, proc.log);
});
