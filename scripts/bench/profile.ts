/**
 * Where apprun's CPU goes per request: runs the worker on a bench app under V8's sampling
 * profiler (`deno run --cpu-prof`), loads it with wrk, stops it (SIGINT: a graceful stop, so
 * Deno writes the profile), and prints the functions with the most self time, in µs per
 * request, beside the process's whole CPU time per request (JavaScript, FFI calls, the
 * kernel's share of the syscalls, GC threads). The profile is kept for a closer look.
 *
 *   deno run -A scripts/bench/profile.ts [--app hello|hono] [--seconds 5] [--connections 50]
 *     [--top 40]
 */
import { parseArgs } from "node:util";
import {
  type AppName,
  APPS,
  cpuMicros,
  DENO,
  fmt,
  freePort,
  ROOT,
  waitForPort,
  wrk,
} from "./_lib.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    app: { type: "string", default: "hello" },
    seconds: { type: "string", default: "5" },
    connections: { type: "string", default: "50" },
    top: { type: "string", default: "40" },
  },
});
const app = values.app as AppName;
const port = freePort();
const dir = await Deno.makeTempDir({ prefix: "apprun-profile-" });
const worker = {
  mode: "serve",
  handler: APPS[app].file,
  port,
  host: "127.0.0.1",
  unix: [],
  drainTimeoutMs: 1000,
  limits: { idleTimeoutMs: 600_000 },
  logLevel: "error",
};
const child = new Deno.Command(DENO, {
  args: [
    "run",
    "--quiet",
    "-A",
    "--cpu-prof",
    `--cpu-prof-dir=${dir}`,
    "--cpu-prof-interval=100",
    "--preload",
    `${ROOT}/runtime/worker/entry.ts`,
    APPS[app].file,
    String(port),
  ],
  env: { APPRUN_WORKER: JSON.stringify(worker), DENO_LOG: "deno=warn" },
  stdin: "null",
  stdout: "null",
}).spawn();
await waitForPort(port);
await wrk({ port, path: APPS[app].path, seconds: 2, connections: 50 }); // warm-up
const cpu0 = cpuMicros(child.pid);
const t0 = monotonicMicros();
const res = await wrk({
  port,
  path: APPS[app].path,
  seconds: Number(values.seconds),
  connections: Number(values.connections),
});
const window: [number, number] = [t0, monotonicMicros()];
const cpu = cpuMicros(child.pid) - cpu0;
child.kill("SIGINT");
await child.status;

/**
 * CLOCK_MONOTONIC in µs, the clock of V8's profile timestamps, read (to 10 ms) from
 * /proc/uptime, which counts the same time on a machine that never suspends.
 */
function monotonicMicros(): number {
  return Number(Deno.readTextFileSync("/proc/uptime").split(" ")[0]) * 1e6;
}

// deno-lint-ignore no-explicit-any
type Profile = { nodes: any[]; samples: number[]; timeDeltas: number[]; startTime: number };
const file = [...Deno.readDirSync(dir)].find((e) => e.name.endsWith(".cpuprofile"));
if (file === undefined) throw new Error(`no profile written in ${dir}`);
const profile: Profile = JSON.parse(Deno.readTextFileSync(`${dir}/${file.name}`));
// Only the samples of the measured window (the profile starts at process start: skip boot and
// the warm-up), as a share of the window's wall time.
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<string, number>();
let at = profile.startTime, sampled = 0;
for (let i = 0; i < profile.samples.length; i++) {
  at += profile.timeDeltas[i];
  if (at < window[0] || at > window[1]) continue;
  const f = byId.get(profile.samples[i]).callFrame;
  const key = `${f.functionName || "(anon)"} ${f.url.split("/").slice(-2).join("/")}:${
    f.lineNumber + 1
  }`;
  const dt = profile.timeDeltas[i + 1] ?? 0;
  self.set(key, (self.get(key) ?? 0) + dt);
  sampled += dt;
}
const perRequest = (us: number) => us / res.requests;
console.log(
  `${app}, wrk -t1 -c${values.connections} ${values.seconds}s: ${fmt(res.rps)} req/s, ` +
    `process CPU ${fmt(perRequest(cpu), 2)} µs/request; main thread sampled ` +
    `${fmt(perRequest(sampled), 2)} µs/request (profile: ${dir}/${file.name})`,
);
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top));
for (const [k, v] of rows) console.log(`${fmt(perRequest(v), 3).padStart(7)} µs  ${k}`);
