/**
 * Throughput: apprun against Deno.serve and node:http, serving hello world and a Hono JSON route
 * (scripts/bench/servers/), at 50 and 200 connections, with wrk (apt-get install wrk). The
 * servers run side by side and the rounds are interleaved (each round runs every server once,
 * in a rotating order), so a noisy machine weighs on all of them alike. Prints per round req/s,
 * p99 latency and the server's CPU time per request; then the medians and apprun's ratio to
 * each baseline (the median of the per-round ratios), and how much of the machine wrk itself took.
 * With `--parallel N`: apprun on one loop, `apprun serve --parallel N` and `deno serve --parallel`
 * with `DENO_JOBS=N`, the ratios those of apprun ×N.
 *
 *   deno run -A scripts/bench/throughput.ts [--rounds 3] [--seconds 5] [--connections 50,200]
 *     [--apps hello,hono] [--parallel N]
 */
import { parseArgs } from "node:util";
import {
  type AppName,
  APPS,
  benchServers,
  fmt,
  freePort,
  has,
  median,
  type Started,
  wrk,
  type WrkResult,
} from "./_lib.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "5" },
    connections: { type: "string", default: "50,200" },
    apps: { type: "string", default: "hello,hono" },
    parallel: { type: "string" },
  },
});
if (!has("wrk")) {
  console.log("throughput: wrk is not installed (apt-get install wrk); nothing measured");
  Deno.exit(0);
}
const rounds = Number(values.rounds), seconds = Number(values.seconds);
const counts = values.connections!.split(",").map(Number);
const apps = values.apps!.split(",") as AppName[];
const parallel = values.parallel === undefined ? undefined : Number(values.parallel);
const servers = benchServers(parallel);
const mineName = parallel === undefined ? "apprun" : `apprun ×${parallel}`;
const baselines = parallel === undefined
  ? ["Deno.serve", "node:http"]
  : [`deno serve ×${parallel}`, "apprun"];
const load = () => Deno.loadavg()[0].toFixed(1);

console.log(
  `wrk -t1, ${seconds}s runs, ${rounds} interleaved rounds; load average ${load()} on ` +
    `${navigator.hardwareConcurrency} cores`,
);
const summary: string[] = [];
for (const app of apps) {
  const path = APPS[app].path;
  const running: { name: string; srv: Started }[] = [];
  try {
    for (const s of servers) running.push({ name: s.name, srv: await s.start(freePort(), app) });
    // Warm the JITs up.
    for (const r of running) await wrk({ port: r.srv.port, path, seconds: 2, connections: 50 });
    // results[connections][server] = one result per round
    const results = new Map<number, Map<string, WrkResult[]>>();
    for (let round = 0; round < rounds; round++) {
      for (const c of counts) {
        const line: string[] = [];
        for (let i = 0; i < running.length; i++) {
          const r = running[(i + round) % running.length];
          const res = await wrk({
            port: r.srv.port,
            path,
            seconds,
            connections: c,
            pid: r.srv.child.pid,
          });
          if (res.errors) console.error(`  ${r.name}: wrk: ${res.errors}`);
          const byServer = results.get(c) ?? new Map<string, WrkResult[]>();
          results.set(c, byServer);
          byServer.set(r.name, [...(byServer.get(r.name) ?? []), res]);
          line.push(
            `${r.name} ${fmt(res.rps)} req/s p99 ${fmt(res.p99Ms, 2)} ms ` +
              `${fmt(res.cpuPerRequestUs, 1)} µs CPU/req (wrk ${
                fmt(res.wrkCpuPct)
              }% of the machine)`,
          );
        }
        console.log(`${app} -c${c} round ${round + 1} (load ${load()}): ${line.join("; ")}`);
      }
    }
    for (const c of counts) summary.push(...summarize(app, c, results.get(c)!));
  } finally {
    for (const r of running) await r.srv.stop();
  }
}
console.log(`\n${summary.join("\n")}`);

/** Medians per server, and apprun's per-round ratios to each baseline (their median). */
function summarize(app: string, c: number, byServer: Map<string, WrkResult[]>): string[] {
  const lines = [`${app}, ${c} connections (medians of ${rounds} rounds):`];
  for (const [name, rs] of byServer) {
    lines.push(
      `  ${name.padEnd(14)} ${fmt(median(rs.map((r) => r.rps))).padStart(7)} req/s  p99 ` +
        `${fmt(median(rs.map((r) => r.p99Ms)), 2)} ms  ` +
        `${fmt(median(rs.map((r) => r.cpuPerRequestUs)), 1)} µs CPU/request  wrk ` +
        `${fmt(median(rs.map((r) => r.wrkCpuPct)))}% of the machine`,
    );
  }
  const mine = byServer.get(mineName)!;
  for (const base of baselines) {
    const theirs = byServer.get(base);
    if (theirs === undefined) continue;
    const ratios = mine.map((r, i) => r.rps / theirs[i].rps);
    const p99 = mine.map((r, i) => r.p99Ms / theirs[i].p99Ms);
    lines.push(
      `  ${mineName} / ${base}: ${fmt(median(ratios), 2)}× req/s (rounds ${
        ratios.map((x) => fmt(x, 2)).join(", ")
      }), p99 ${fmt(median(p99), 2)}×`,
    );
  }
  return lines;
}
