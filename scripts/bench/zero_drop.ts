/**
 * Zero-drop run: steady keep-alive load (100 clients) on apprun under its supervisor through 20
 * restarts (SIGHUP every 600 ms). Prints total and failed requests (target 0), and p99 latency
 * inside the restart windows against steady state.
 *
 *   deno run -A scripts/bench/zero_drop.ts [--restarts 20] [--connections 100]
 */
import { parseArgs } from "node:util";
import { runLoad } from "../e2e/load.ts";
import { fmt, freePort, pct } from "./_lib.ts";
import { startSupervised } from "../e2e/supervised.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    restarts: { type: "string", default: "20" },
    connections: { type: "string", default: "100" },
  },
});
const restarts = Number(values.restarts);
const port = freePort();
const sup = await startSupervised({ handler: "tests/fixtures/handoff.ts", port, logLevel: "warn" });
try {
  let stop!: () => void;
  const until = new Promise<void>((r) => stop = r);
  const load = runLoad({ port, connections: Number(values.connections), until });
  const windows: [number, number][] = [];
  await new Promise((r) => setTimeout(r, 1000));
  for (let i = 0; i < restarts; i++) {
    const t = performance.now();
    sup.reload();
    windows.push([t, t + 400]);
    await new Promise((r) => setTimeout(r, 600));
  }
  await new Promise((r) => setTimeout(r, 1000));
  stop();
  const r = await load;
  const inWindow = (t: number, lat: number) => windows.some(([a, b]) => t - lat < b && t > a);
  const during = r.timeline.filter(([t, lat]) => inWindow(t, lat)).map(([, lat]) => lat);
  const steady = r.timeline.filter(([t, lat]) => !inWindow(t, lat)).map(([, lat]) => lat);
  const failed = r.requests - r.answered;
  console.log(
    `zero-drop: ${restarts} restarts under load, ${values.connections} keep-alive clients`,
  );
  console.log(
    `  requests ${r.requests}, answered ${r.answered}, failed ${failed} (resets ${r.resets}, early closes ${r.earlyCloses}, wrong answers ${r.wrongAnswers})`,
  );
  console.log(
    `  p99 latency: steady ${fmt(pct(steady, 99), 1)} ms, during restarts ${
      fmt(pct(during, 99), 1)
    } ms (max ${fmt(pct(during, 100), 1)} ms)`,
  );
  for (const e of r.errors.slice(0, 5)) console.log(`  error: ${e}`);
} finally {
  await sup.stop();
}
