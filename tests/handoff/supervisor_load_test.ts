/**
 * Handoff under the embedded supervisor (`apprun serve` by hand), both paths: 200 keep-alive
 * clients send requests in a loop while the worker is restarted (cold: the control socket's
 * `restart`, through the fdstore) or reloaded (warm: SIGHUP, the next worker takes over
 * directly) 10 times. Every request is answered exactly once (by its own id), no connection is
 * reset or closed, the worker pid changes each time, and every connection is answered by
 * several generations. Prints the latency percentiles and, per handoff, the supervisor's own
 * figure (cold: SIGTERM → READY=1; warm: the reload) and the pause the clients saw (the longest
 * stretch with no answer at all). The same with two event loops in the worker (`--parallel 2`).
 */
import assert from "node:assert/strict";
import { runLoad } from "../../scripts/e2e/load.ts";
import { assertNothingLost, latencyLine } from "../_load.ts";
import { sleep } from "../_poll.ts";
import { startSupervised } from "./_util.ts";

const CLIENTS = 200;
const RESTARTS = 10;

/** The longest gap between consecutive answers completed within [from, to] (ms). */
function longestGap(timeline: [number, number][], from: number, to: number): number {
  const ends = timeline.map(([t]) => t).filter((t) => t >= from && t <= to).sort((a, b) => a - b);
  let gap = 0;
  for (let i = 1; i < ends.length; i++) gap = Math.max(gap, ends[i] - ends[i - 1]);
  return gap;
}

for (const loops of [1, 2]) {
  for (const path of ["restart", "reload"] as const) {
    const what = path === "reload" ? "warm reloads (SIGHUP)" : "cold restarts";
    const name = `supervisor: 200 keep-alive clients through 10 ${what}, nothing lost` +
      (loops > 1 ? ` (--parallel ${loops})` : "");
    Deno.test(name, async () => {
      await handoffsUnderLoad(path, loops);
    });
  }
}

async function handoffsUnderLoad(path: "restart" | "reload", loops: number): Promise<void> {
  await using app = await startSupervised({
    args: loops > 1 ? ["--parallel", String(loops)] : [],
  });
  const pids = [await app.pid()];
  const windows: [number, number][] = [];
  let done!: () => void;
  const until = new Promise<void>((r) => done = r);
  const load = runLoad({ port: app.port, connections: CLIENTS, until });
  try {
    await sleep(500); // pacing: the load runs on the first generation
    for (let i = 0; i < RESTARTS; i++) {
      const t0 = performance.now();
      const pid = await (path === "reload" ? app.reload() : app.restart());
      windows.push([t0, performance.now()]);
      assert.ok(!pids.includes(pid), `restart ${i}: pid ${pid} is new (${pids})`);
      pids.push(pid);
      await sleep(300); // pacing: the load runs on this generation
    }
  } finally {
    done();
  }
  const report = await load;
  const figure = path === "reload"
    ? /took over from pid \d+ in (\d+) ms/g
    : /handoff took (\d+) ms/g;
  const handoffMs = [...app.proc.log.matchAll(figure)].map((m) => Number(m[1]));
  // The clients' pause: from the restart signal to 250 ms after READY=1 (the next restart
  // comes 300 ms after it).
  const pauses = windows.map(([from, to]) => longestGap(report.timeline, from, to + 250));
  const ms = (v: number) => v.toFixed(1);
  console.log(
    `supervisor: ${report.answered} answered on ${CLIENTS} connections through ${RESTARTS} ` +
      `${path}s; latency ${latencyLine(report)}`,
  );
  const figureName = path === "reload" ? "reload request → ready" : "SIGTERM → READY=1";
  console.log(`  ${figureName} per ${path} (ms): ${handoffMs.join(", ")}`);
  console.log(`  clients' pause per restart (ms): ${pauses.map(ms).join(", ")}`);
  assertNothingLost(report, `supervisor ${path}s`, 5 * CLIENTS * RESTARTS + 1);
  assert.equal(handoffMs.length, RESTARTS);
  const perConnection = report.pidsPerConnection.map((p) => new Set(p).size);
  assert.equal(perConnection.length, CLIENTS);
  assert.ok(
    Math.min(...perConnection) >= 2,
    `a connection saw ${Math.min(...perConnection)} generation(s)`,
  );
  console.log(
    `  generations seen per connection: min ${Math.min(...perConnection)} of ${pids.length}`,
  );
  const answering = new Set(report.pidsPerConnection.flat());
  assert.equal(pids.length, RESTARTS + 1);
  for (const pid of pids) assert.ok(answering.has(pid), `generation ${pid} answered`);
}
