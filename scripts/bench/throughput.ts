/**
 * Hello-world throughput: apprun's engine against Deno.serve and node:http, run side by side,
 * interleaved and repeated (this machine is noisy), with wrk (apt-get install wrk). Prints
 * req/s per round, the medians, and apprun's ratio to each baseline.
 *
 *   deno run -A scripts/bench/throughput.ts [--rounds 5] [--seconds 5] [--connections 50]
 */
import { parseArgs } from "node:util";
import { fmt, freePort, has, helloServers, median, wrk } from "./_lib.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "5" },
    seconds: { type: "string", default: "5" },
    connections: { type: "string", default: "50" },
  },
});
if (!has("wrk")) {
  console.log("throughput: wrk is not installed (apt-get install wrk); nothing measured");
  Deno.exit(0);
}
const rounds = Number(values.rounds), seconds = Number(values.seconds);
const connections = Number(values.connections);

const servers = helloServers();

const results: Record<string, number[]> = {};
const running = await Promise.all(
  servers.map(async (s) => ({ ...s, srv: await s.start(freePort()) })),
);
try {
  for (const s of running) await wrk(s.srv.port, 1, connections); // warm up the JITs
  for (let r = 0; r < rounds; r++) {
    const line: string[] = [];
    // Rotate the order each round so no server always runs first.
    for (let i = 0; i < running.length; i++) {
      const s = running[(i + r) % running.length];
      const rps = await wrk(s.srv.port, seconds, connections);
      (results[s.name] ??= []).push(rps);
      line.push(`${s.name} ${fmt(rps)}`);
    }
    console.log(`round ${r + 1}: ${line.join(", ")}`);
  }
} finally {
  for (const s of running) await s.srv.stop();
}
const med = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]));
console.log(`\nmedian req/s (wrk -t1 -c${connections}, ${seconds}s × ${rounds}):`);
for (const [k, v] of Object.entries(med)) console.log(`  ${k.padEnd(11)} ${fmt(v)}`);
for (const base of ["Deno.serve", "node:http"]) {
  if (med[base]) console.log(`apprun / ${base}: ${fmt(med.apprun / med[base], 2)}×`);
}
